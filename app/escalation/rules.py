"""The graded-response rules: a validated, versioned document the city admin can read and replace.

Every incident records the version it was planned under, so replacing the rules never rewrites history.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import JSON, Column
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field as SQLField
from sqlmodel import Session, SQLModel, col, select

from app import audit
from app.auth.principal import Principal, authorize_whole_tree
from app.clock import Clock
from app.db import UTCDateTime
from app.errors import Conflict, FieldError, Invalid
from app.escalation.grading import Severity
from app.org.models import AgencyKind, Tier

TIER_ORDER = [Tier.street, Tier.district, Tier.city]


class Category(StrEnum):
    fire = "fire"
    gas = "gas"
    hazmat = "hazmat"
    construction = "construction"
    ebike = "ebike"
    hospital = "hospital"
    elderly_care = "elderly_care"
    traffic = "traffic"
    flood = "flood"
    geologic = "geologic"
    public_health = "public_health"
    public_security = "public_security"
    other = "other"


CATEGORIES = tuple(Category)

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


class ResponseRules(SQLModel, table=True):
    __tablename__ = "response_rules"

    version: int = SQLField(primary_key=True)
    document: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    created_at: datetime = SQLField(sa_type=UTCDateTime)
    created_by: str = SQLField(max_length=120)


def _as_document(row: ResponseRules) -> RulesDocument:
    doc = RulesDocument.model_validate(row.document)
    return doc.model_copy(update={"version": row.version, "created_at": row.created_at, "created_by": row.created_by})


_NEWEST = select(ResponseRules).order_by(col(ResponseRules.version).desc()).limit(1)


def current(session: Session) -> RulesDocument:
    """The newest rules (the defaults, as version 1, until anyone replaces them)."""
    row = session.exec(_NEWEST).first()
    if row is None:
        return default_document().model_copy(update={"version": 1, "created_by": "default"})
    return _as_document(row)


def by_version(session: Session, version: int) -> RulesDocument:
    """The rules an incident was planned under. Version 1 is always the built-in defaults."""
    row = session.get(ResponseRules, version) if version > 1 else None
    if row is None:
        return default_document().model_copy(update={"version": 1, "created_by": "default"})
    return _as_document(row)


def replace(session: Session, *, clock: Clock, actor: Principal, document: dict[str, Any]) -> RulesDocument:
    """Validate and store a new version; the old ones stay for the incidents planned under them."""
    authorize_whole_tree(actor, "rules:write")
    try:
        parsed = RulesDocument.model_validate(document)
    except ValidationError as exc:
        fields = [
            FieldError(".".join(str(p) for p in e["loc"]) or "document", e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        raise Invalid(
            "the rules document is invalid: " + "; ".join(f"{f.field}: {f.message}" for f in fields[:5]), fields=fields
        ) from exc
    before = current(session)
    version = (before.version or 1) + 1
    body = parsed.model_dump(mode="json", exclude={"version", "created_at", "created_by"})
    row = ResponseRules(version=version, document=body, created_at=clock.now(), created_by=actor.actor)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict("the rules were replaced concurrently; read them again and retry") from exc
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="rules.replace",
        object_type="response_rules",
        object_id=version,
        before={"version": before.version},
        after=body,
    )
    return _as_document(row)
