from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.org.schemas import UnitCode
from app.rollcall.models import EntryState, Scope
from app.roster.models import DutyRole
from app.roster.schemas import PersonBrief

# 60 s … 24 h, as PRODUCT.md §9 bounds every answer window.
Window = Annotated[int, Field(ge=60, le=86_400, description="seconds to answer, 60 … 86400")]
_BETWEEN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class RollCallCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = Field(default=None, description="the calling unit (default: your own)")
    scope: Scope = Scope.children
    roles: Annotated[list[DutyRole], Field(min_length=1, max_length=2)] = [DutyRole.duty_officer, DutyRole.leader]
    answer_within_seconds: Window = 300
    voice_for_leaders: bool = Field(default=False, description="also call the leaders' posts (press 1 to answer)")
    note: Annotated[str, Field(max_length=500)] = ""


class RollCallAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = Field(default=None, description="the post's unit (default: every post you hold)")
    role: DutyRole | None = None


class EntryPublic(BaseModel):
    id: int
    unit_code: str
    unit_name: str
    role: str
    person: PersonBrief | None
    state: EntryState
    answered_at: datetime | None
    channel: str | None


class Summary(BaseModel):
    posts: int
    answered: int
    missed: int
    vacant: int
    pending: int
    rate: float = Field(description="answered / posts manned (posts less vacant); 0 when none is manned")


class RollCallPublic(BaseModel):
    id: int
    code: str
    unit_code: str
    unit_name: str
    scope: Scope
    roles: list[str]
    answer_within_seconds: int
    voice_for_leaders: bool
    note: str
    started_at: datetime
    due_at: datetime
    started_by: str
    schedule_id: int | None
    summary: Summary


class RollCallDetail(RollCallPublic):
    entries: list[EntryPublic]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = None
    scope: Scope = Scope.children
    roles: Annotated[list[DutyRole], Field(min_length=1, max_length=2)] = [DutyRole.duty_officer]
    times_per_day: Annotated[int, Field(ge=1, le=24)] = 1
    between: Annotated[str, Field(description="local wall-clock window, HH:MM-HH:MM (may cross midnight)")] = (
        "22:00-06:00"
    )
    answer_within_seconds: Window = 300

    @field_validator("between")
    @classmethod
    def _between(cls, value: str) -> str:
        match = _BETWEEN.match(value.strip())
        if match is None:
            raise ValueError("must be HH:MM-HH:MM, e.g. 22:00-06:00")
        if match.group(1, 2) == match.group(3, 4):
            raise ValueError("start and end must differ")
        return value.strip()

    def window(self) -> tuple[time, time]:
        start, end = self.between.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)


class SchedulePublic(BaseModel):
    id: int
    unit_code: str
    scope: Scope
    roles: list[str]
    times_per_day: int
    between: str
    answer_within_seconds: int
    next_at: AwareDatetime | None
    active: bool
