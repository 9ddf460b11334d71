"""The rules document: one rule per level (who leads, who must acknowledge, windows), validated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.escalation.grading import Severity
from app.incidents.categories import CATEGORIES
from app.org.models import AgencyKind, Tier

Seconds = Annotated[int, Field(gt=0, le=30 * 24 * 3600)]


class LevelRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_tier: Tier
    must_acknowledge: list[Tier] = Field(min_length=1)
    informed: list[Tier] = Field(default_factory=list)
    ack_window_seconds: Seconds
    first_report_due_seconds: Seconds
    follow_up_interval_seconds: Seconds
    leader_at_once: bool = Field(description="page the leader together with the duty officer")
    voice_for_leaders: bool = Field(description="also phone the leaders (a call with press-1 to acknowledge)")

    @model_validator(mode="after")
    def _consistent(self) -> LevelRule:
        if len(set(self.must_acknowledge)) != len(self.must_acknowledge):
            raise ValueError("must_acknowledge lists a tier twice")
        if self.lead_tier not in self.must_acknowledge:
            raise ValueError("the lead tier must be among must_acknowledge")
        if set(self.informed) & set(self.must_acknowledge):
            raise ValueError("a tier cannot be both informed and required to acknowledge")
        return self


class RulesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, description="assigned by the server; ignored on PUT")
    created_at: datetime | None = Field(default=None, description="assigned by the server; ignored on PUT")
    created_by: str | None = Field(default=None, description="assigned by the server; ignored on PUT")
    levels: dict[Severity, LevelRule]
    city_repeat_limit: int | None = Field(
        default=None, ge=1, description="how many times the city chain repeats without an ack (null: no cap)"
    )
    sensitive_informs_city: bool = True
    category_agencies: dict[str, list[AgencyKind]] = Field(
        description="which kinds of agency receive an incident of each category by webhook"
    )

    @field_validator("levels")
    @classmethod
    def _every_level(cls, levels: dict[Severity, LevelRule]) -> dict[Severity, LevelRule]:
        missing = [s.value for s in Severity if s not in levels]
        if missing:
            raise ValueError(f"missing level(s) {', '.join(missing)}")
        return levels

    @field_validator("category_agencies")
    @classmethod
    def _known_categories(cls, mapping: dict[str, list[AgencyKind]]) -> dict[str, list[AgencyKind]]:
        unknown = sorted(set(mapping) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(unknown)}")
        return mapping

    def level(self, severity: Severity) -> LevelRule:
        return self.levels[severity]


def default_document() -> RulesDocument:
    """PRODUCT.md §3: the defaults a new installation starts with."""
    street, district, city = Tier.street, Tier.district, Tier.city
    h = 3600
    city_led = LevelRule(
        lead_tier=city,
        must_acknowledge=[street, district, city],
        ack_window_seconds=180,
        first_report_due_seconds=h // 2,
        follow_up_interval_seconds=12 * h,
        leader_at_once=True,
        voice_for_leaders=True,
    )
    return RulesDocument(
        levels={
            Severity.IV: LevelRule(
                lead_tier=district,
                must_acknowledge=[street, district],
                ack_window_seconds=300,
                first_report_due_seconds=6 * h,
                follow_up_interval_seconds=24 * h,
                leader_at_once=False,
                voice_for_leaders=False,
            ),
            Severity.III: LevelRule(
                lead_tier=district,
                must_acknowledge=[street, district],
                informed=[city],
                ack_window_seconds=300,
                first_report_due_seconds=h,
                follow_up_interval_seconds=24 * h,
                leader_at_once=True,
                voice_for_leaders=False,
            ),
            Severity.II: city_led,
            Severity.I: city_led,
        },
        category_agencies={
            "fire": [AgencyKind.fire, AgencyKind.ambulance],
            "gas": [AgencyKind.gas, AgencyKind.fire],
            "hazmat": [AgencyKind.fire, AgencyKind.ambulance, AgencyKind.health],
            "construction": [AgencyKind.fire, AgencyKind.ambulance],
            "ebike": [AgencyKind.fire],
            "hospital": [AgencyKind.health, AgencyKind.fire, AgencyKind.ambulance],
            "elderly_care": [AgencyKind.health, AgencyKind.fire, AgencyKind.ambulance],
            "traffic": [AgencyKind.traffic, AgencyKind.ambulance],
            "flood": [AgencyKind.fire],
            "geologic": [AgencyKind.fire, AgencyKind.ambulance],
            "public_health": [AgencyKind.health, AgencyKind.ambulance],
            "public_security": [AgencyKind.police],
        },
    )
