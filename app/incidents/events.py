"""Incident events for agencies and subscribers (webhooks), and which incidents an agency may read."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, or_, select

from app.auth.principal import Principal
from app.clock import Clock
from app.escalation.rules import service as rules_service
from app.escalation.rules.schemas import RulesDocument
from app.incidents.models import Incident
from app.notify import webhooks
from app.org import paths
from app.org.models import Agency, Unit


def payload(inc: Incident) -> dict[str, Any]:
    """The incident as webhook receivers see it."""
    return {
        "id": inc.id,
        "code": inc.code,
        "status": inc.status,
        "severity": inc.severity,
        "category": inc.category,
        "title": inc.title,
        "unit_code": inc.unit_path.rsplit("/", 1)[-1],
        "address": inc.address,
        "occurred_at": inc.occurred_at.isoformat(),
        "lead_tier": inc.lead_tier,
        "casualties": {
            "deaths": inc.deaths,
            "injuries": inc.serious_injuries,
            "trapped": inc.trapped,
            "missing": inc.missing,
        },
        "economic_loss_cny": inc.economic_loss_cny,
        "sensitive": inc.sensitive,
        "source": inc.source,
        "external_id": inc.external_id,
        "updated_at": inc.updated_at.isoformat(),
    }


def routed_agencies(session: Session, rules: RulesDocument, inc: Incident) -> list[str]:
    """Codes of the agencies the rules route this incident's category to, within their own scope."""
    kinds = [str(k) for k in rules.category_agencies.get(inc.category, [])]
    if not kinds:
        return []
    rows = session.exec(
        select(Agency, Unit)
        .outerjoin(Unit, col(Unit.id) == col(Agency.unit_id))
        .where(col(Agency.kind).in_(kinds), col(Agency.active).is_(True))
    ).all()
    return [a.code for a, u in rows if u is None or paths.within(inc.unit_path, u.path)]


def publish(session: Session, *, clock: Clock, inc: Incident, rules: RulesDocument, event_type: str) -> None:
    """Queue the event for every matching subscription, in the caller's transaction."""
    webhooks.publish(
        session,
        clock=clock,
        event_type=event_type,
        incident=payload(inc),
        category=inc.category,
        severity=inc.severity,
        unit_path=inc.unit_path,
        agency_codes=lambda: routed_agencies(session, rules, inc),
    )


def _agency(session: Session, actor: Principal) -> tuple[Agency, Unit | None]:
    agency = session.get(Agency, actor.id)
    assert agency is not None
    return agency, session.get(Unit, agency.unit_id) if agency.unit_id else None


def _categories_for(session: Session, kind: str) -> list[str]:
    rules = rules_service.current(session)
    return [cat for cat, kinds in rules.category_agencies.items() if kind in [str(k) for k in kinds]]


def agency_receives(session: Session, actor: Principal, inc: Incident) -> bool:
    agency, unit = _agency(session, actor)
    in_scope = unit is None or paths.within(inc.unit_path, unit.path)
    return in_scope and inc.category in _categories_for(session, agency.kind)


def agency_visibility(session: Session, actor: Principal) -> Any:
    """WHERE clause: what the agency posted, or what the rules route to its kind within its scope."""
    agency, unit = _agency(session, actor)
    routed: Any = col(Incident.category).in_(_categories_for(session, agency.kind))
    if unit is not None:
        routed = routed & paths.sql_within(col(Incident.unit_path), unit.path)
    return or_(col(Incident.source) == actor.label, routed)
