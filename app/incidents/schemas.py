from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.escalation.grading import Severity
from app.incidents.categories import Category
from app.incidents.models import ReportKind, Status

Count = Annotated[int, Field(ge=0, le=1_000_000)]
Money = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]


class Casualties(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deaths: Count = 0
    injuries: Count = Field(default=0, description="serious injuries (重伤)")
    trapped: Count = 0
    missing: Count = 0


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class IncidentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[str | None, Field(min_length=1, max_length=100)] = Field(
        default=None,
        description="the caller's own id. A repeat from the same source updates that incident with only the fields "
        "it carries: an omitted field (description, address, location, severity, sensitive, casualties or any one "
        "of its counts, economic_loss_cny) keeps its value, so a repeat never silently zeroes figures. New figures "
        "can raise the level; it is never lowered automatically",
    )
    category: Category
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    unit_code: Annotated[str, Field(pattern=r"^\d{6,12}$")]
    address: Annotated[str, Field(max_length=300)] = ""
    location: Location | None = None
    occurred_at: AwareDatetime = Field(
        description="when it happened, with its UTC offset; at most 10 minutes ahead of the server's clock (422)"
    )
    severity: Severity | None = Field(default=None, description="the reporter's grading, if any (I–IV)")
    casualties: Casualties = Field(
        default_factory=Casualties, description="on a repeat, counts left out keep their values (never zeroed)"
    )
    economic_loss_cny: Money = Field(default=0, description="direct economic loss; on a repeat, kept when left out")
    sensitive: bool = False


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind
    text: Annotated[str, Field(min_length=1, max_length=10000)]
    casualties: Casualties | None = Field(
        default=None, description="the counts that changed: a count left out keeps its value (0 is a figure)"
    )
    economic_loss_cny: Money | None = None


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=2, max_length=500)]


class SeverityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: Severity
    reason: Annotated[str, Field(min_length=2, max_length=500)]


class PersonRef(BaseModel):
    id: int
    name: str


TierStateName = Literal["paging", "acknowledged", "informed", "idle"]
OverallStateName = Literal["pending", "partial", "acknowledged", "resolved", "closed"]


class TierState(BaseModel):
    tier: str
    unit_code: str
    unit_name: str
    state: TierStateName = Field(
        description="paging: must acknowledge and has not (its pages go out from the escalation tick, at once for a "
        "new incident); acknowledged; informed: told, no acknowledgement needed; idle: not involved (yet)"
    )
    required: bool
    informed: bool
    passed_over: bool = Field(
        description="must acknowledge and has not, and its chain ran out so the tier above was told (越级); its "
        "state stays paging"
    )
    step: int
    acknowledged_at: datetime | None
    acknowledged_by: PersonRef | None
    next_step_at: datetime | None


class TimelineItem(BaseModel):
    at: datetime
    kind: str
    actor: str
    tier: str | None
    message: str
    data: dict[str, object] | None


class ReportPublic(BaseModel):
    kind: str
    number: int
    text: str
    figures: dict[str, object] | None
    author: str
    at: datetime
    late: bool


class IncidentPublic(BaseModel):
    id: int
    code: str
    status: Status
    severity: Severity
    severity_color: str
    reported_severity: Severity | None
    computed_severity: Severity
    lead_tier: str
    rules_version: int
    category: str
    title: str
    description: str
    unit_code: str
    unit_name: str
    address: str
    location: Location | None
    occurred_at: datetime
    casualties: Casualties
    economic_loss_cny: float
    sensitive: bool
    source: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    report_due_at: datetime | None
    ack_state: OverallStateName = Field(
        description="the incident as a whole: acknowledged only when every required tier has acknowledged; partial "
        "while some have and another still owes it (status turns acknowledged at the first acknowledgement); "
        "pending when none has; resolved or closed by its status"
    )
    tiers: list[TierState]


class IncidentDetail(IncidentPublic):
    timeline: list[TimelineItem]
    reports: list[ReportPublic]


class NotificationPublic(BaseModel):
    id: int
    channel: str
    to: str
    person_id: int | None
    tier: str | None
    step: int | None
    status: str
    attempts: int
    provider: str | None = Field(default=None, description="who carried it: twilio, aliyun, tencent")
    provider_id: str | None
    created_at: datetime
    sent_at: datetime | None
    error: str | None


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_seconds: Annotated[int, Field(ge=10, le=7 * 24 * 3600)] = 300


class HeartbeatPublic(BaseModel):
    name: str
    interval_seconds: int
    last_seen_at: datetime
    due_at: datetime
    status: Literal["ok", "missed"]
