from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from app.org.schemas import PersonPublic, UnitCode
from app.roster.models import MAX_COVER, DutyRole
from app.schemas import MAX_ID


def _person_ref(value: object) -> object:
    # Checked before the int | str union, so the error names the field itself (not a member of the union).
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= MAX_ID:
        raise ValueError(f"a person id is from 1 to {MAX_ID}")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("a username or phone has at most 64 characters")
    return value


# A person named by id, username or E.164 phone.
PersonRef = Annotated[
    int | str,
    BeforeValidator(_person_ref),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID}, {"type": "string", "maxLength": 64}],
            "description": "person id, username or phone (+86…)",
        }
    ),
]


def _check_interval(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    if ends_at - starts_at > MAX_COVER:
        raise ValueError("at most 31 days; split longer periods")


class PersonBrief(BaseModel):
    id: int
    name: str
    phone: str


class RotationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode
    role: DutyRole
    name: str = Field(default="", max_length=100)
    participants: list[PersonRef] = Field(min_length=1, max_length=100, description="in order of their turns")
    start_date: date = Field(description="the first shift starts on this date at handoff_time (the unit's zone)")
    handoff_time: time = Field(default=time(8, 30), description="wall-clock time of the handoff, e.g. 08:30")
    shift_minutes: int = Field(default=1440, ge=60, le=44640, description="length of each shift (1440 = 24 h)")
    cycle_minutes: int | None = Field(
        default=None,
        ge=60,
        le=44640,
        description="from one shift's start to the next (default: shift_minutes); longer than the shift leaves the "
        "rest of the cycle to another rotation, e.g. a day rotation 08:30 + 540 and a night rotation 17:30 + 900, "
        "both every 1440",
    )
    end_date: date | None = Field(default=None, description="the rotation stops at handoff_time on this date")

    @model_validator(mode="after")
    def _consistent(self) -> RotationCreate:
        if self.cycle_minutes is not None and self.cycle_minutes < self.shift_minutes:
            raise ValueError("cycle_minutes may not be shorter than shift_minutes")
        if self.end_date is not None and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        if self.handoff_time.tzinfo is not None:
            raise ValueError("handoff_time is a wall-clock time in the unit's zone, without an offset")
        return self


class RotationEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ends_at: AwareDatetime = Field(description="the rotation covers nothing from this instant on")


class RotationPublic(BaseModel):
    id: int
    unit_code: str
    role: str
    name: str
    participants: list[PersonBrief]
    start_date: date
    handoff_time: str = Field(description="wall-clock time of the handoff in the unit's zone", examples=["08:30"])
    shift_minutes: int
    cycle_minutes: int
    timezone: str
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime


class ShiftCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode
    role: DutyRole
    person: PersonRef
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _interval(self) -> ShiftCreate:
        _check_interval(self.starts_at, self.ends_at)
        return self


class ShiftPublic(BaseModel):
    id: int
    unit_code: str
    role: str
    person: PersonBrief
    starts_at: datetime
    ends_at: datetime
    source: str


class OverrideCreate(ShiftCreate):
    reason: str = Field(default="", max_length=200)


class OverridePublic(ShiftPublic):
    reason: str
    swap_group: str | None


class SwapSide(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: PersonRef
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _interval(self) -> SwapSide:
        _check_interval(self.starts_at, self.ends_at)
        return self


class SwapCreate(BaseModel):
    """换班: `first` is on duty over their interval and `second` over theirs; afterwards each covers the other's."""

    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode
    role: DutyRole
    first: SwapSide
    second: SwapSide
    reason: str = Field(default="", max_length=200)


class SwapPublic(BaseModel):
    swap_group: str
    overrides: list[OverridePublic]


class ImportResult(BaseModel):
    rows: int
    created: int
    unchanged: int
    replaced: int = Field(description="existing explicit shifts removed because an imported row overlaps them")


class GapPublic(BaseModel):
    unit_code: str
    unit_name: str
    role: str
    start: datetime
    end: datetime


class PersonChanged(PersonPublic):
    gaps_opened: list[GapPublic] = Field(
        default_factory=list,
        description="roster gaps this change opened in the next 72 h (deactivating a rostered person); "
        "the unit's admins and duty officer were told at once",
    )


class RotationChanged(RotationPublic):
    gaps_opened: list[GapPublic] = Field(
        default_factory=list, description="roster gaps ending the rotation opened in the next 72 h (alerted at once)"
    )


class ShiftDeleted(BaseModel):
    deleted: int = Field(description="rows removed")
    gaps_opened: list[GapPublic] = Field(
        default_factory=list, description="roster gaps the deletion opened in the next 72 h (alerted at once)"
    )


class OverrideCancelled(BaseModel):
    cancelled: int = Field(description="rows removed (2 for both halves of a swap)")
    gaps_opened: list[GapPublic] = Field(
        default_factory=list, description="roster gaps the cancellation opened in the next 72 h (alerted at once)"
    )


class GapReport(BaseModel):
    start: datetime
    end: datetime
    items: list[GapPublic]


class OnCallEntry(BaseModel):
    tier: str
    unit_code: str
    unit_name: str
    duty_officer: PersonBrief | None
    leader: PersonBrief | None


class Board(BaseModel):
    at: datetime
    items: list[OnCallEntry]


class CheckInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = Field(default=None, description="default: wherever you are on duty now")
    role: DutyRole | None = None


class CheckInPublic(BaseModel):
    id: int
    unit_code: str
    role: str
    person: PersonBrief
    at: datetime
    shift_starts_at: datetime
    shift_ends_at: datetime
    late_minutes: int = Field(description="minutes after the shift's start")


class HandoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = Field(default=None, description="default: where you are (or just were) on duty")
    role: DutyRole | None = None
    notes: str = Field(default="", max_length=10_000)
    open_items: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(default_factory=list, max_length=100)
    incoming: PersonRef | None = Field(default=None, description="default: whoever is on duty when your shift ends")


class HandoverPublic(BaseModel):
    id: int
    unit_code: str
    role: str
    outgoing: PersonBrief
    incoming: PersonBrief | None
    at: datetime
    notes: str
    open_items: list[str]
    shift_starts_at: datetime
    shift_ends_at: datetime


class ShiftLogEntry(BaseModel):
    kind: str = Field(description="check_in or handover")
    at: datetime
    unit_code: str
    unit_name: str
    role: str
    person: PersonBrief
    incoming: PersonBrief | None = None
    notes: str | None = None
    open_items: list[str] | None = None


class ShiftLog(BaseModel):
    start: datetime
    end: datetime
    items: list[ShiftLogEntry]


class CalendarLink(BaseModel):
    person_id: int
    url: str
    token: str
