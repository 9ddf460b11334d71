"""Roll-call tables: a roll-call, one entry per post in its scope, and unannounced schedules."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class Scope(StrEnum):
    children = "children"
    subtree = "subtree"


class EntryState(StrEnum):
    pending = "pending"
    answered = "answered"
    missed = "missed"
    vacant = "vacant"


class RollCall(SQLModel, table=True):
    """One roll-call (查岗) of the posts below a unit; `code` is what an SMS reply names."""

    __tablename__ = "roll_call"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(8), unique=True, nullable=False))
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_path: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    scope: str = Field(max_length=16)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    answer_within_seconds: int
    # The leaders' posts are also called (press 1 to answer), not only texted.
    voice_for_leaders: bool = False
    note: str = Field(default="", max_length=500)
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    started_by: str = Field(max_length=120)
    schedule_id: int | None = Field(default=None, foreign_key="roll_call_schedule.id", index=True)
    # When the calling unit's duty officer was told the results (after due_at); null until then.
    told_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class RollCallEntry(SQLModel, table=True):
    """One post (unit + duty role) of a roll-call: who held it when the roll was called, and whether they answered.

    Its chase (app.rollcall.chase) holds the timer: a row of app.escalation's, not memory."""

    __tablename__ = "roll_call_entry"
    __table_args__ = (UniqueConstraint("roll_call_id", "unit_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    roll_call_id: int = Field(foreign_key="roll_call.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: str = Field(max_length=16)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    person_name: str | None = Field(default=None, max_length=100)
    state: str = Field(default=EntryState.pending, max_length=16, index=True)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    channel: str | None = Field(default=None, max_length=16)


class RollCallSchedule(SQLModel, table=True):
    """Unannounced roll-calls: `times_per_day` instants drawn at random each local day inside [start, end).

    `planned` holds the instants still to come for the day drawn; `next_at` is the timer (the earliest of them)."""

    __tablename__ = "roll_call_schedule"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_path: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    scope: str = Field(max_length=16)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    times_per_day: int
    window_start: time
    window_end: time
    answer_within_seconds: int
    planned: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    drawn_for: str | None = Field(default=None, max_length=10)
    next_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=120)
