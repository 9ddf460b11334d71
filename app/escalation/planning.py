"""Planning: which tiers lead, must acknowledge or are informed, for a level. Pure functions of the rules, the
level and the tiers on the incident's chain; no database, no roster."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.escalation.grading import Severity
from app.escalation.rules.schemas import RulesDocument
from app.org.models import Tier


@dataclass(frozen=True)
class Plan:
    lead: Tier
    required: frozenset[Tier]
    informed: frozenset[Tier]


def plan(rules: RulesDocument, severity: Severity, *, sensitive: bool, tiers: Collection[str]) -> Plan:
    """The plan for a level on a chain with these tiers (an incident placed at a district has no street tier)."""
    rule = rules.level(severity)
    required = set(rule.must_acknowledge)
    informed = set(rule.informed) - required
    if sensitive and rules.sensitive_informs_city and Tier.city not in required:
        informed.add(Tier.city)
    lead = rule.lead_tier
    if lead not in tiers:
        lead = Tier.district if Tier.district in tiers else Tier.city
    present = {Tier(t) for t in tiers}
    return Plan(lead=lead, required=frozenset(required & present), informed=frozenset(informed & present))
