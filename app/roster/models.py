"""Roster tables. Who is on duty is never stored: it is computed from these rows (see resolve.py)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class DutyRole(StrEnum):
    duty_officer = "duty_officer"
    leader = "leader"


DUTY_ROLES: tuple[str, ...] = (DutyRole.duty_officer, DutyRole.leader)

# Overrides and explicit shifts are at most this long, so "covering T" is a bounded range scan on starts_at.
MAX_COVER = timedelta(days=31)


class Rotation(SQLModel, table=True):
    """Ordered participants taking turns: shift k starts at start_date + handoff + k × cycle (wall-clock time in the
    unit's zone, so a handoff stays at 08:30 across DST) and lasts shift_minutes; person k mod n takes it.
    A cycle longer than the shift leaves the rest uncovered, which is how day/night patterns are written:
    one rotation 08:30 + 540 min every 1440 min, another 17:30 + 900 min every 1440 min."""

    __tablename__ = "rotation"
    __table_args__ = (Index("ix_rotation_unit_role", "unit_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    role: str = Field(max_length=16)
    name: str = Field(default="", max_length=100)
    participants: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    start_date: date
    handoff_time: time
    shift_minutes: int
    cycle_minutes: int
    # The first handoff as an instant; only used to narrow queries (the zone is applied when computing).
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Shift(SQLModel, table=True):
    """An explicit shift from a published (usually monthly) table; beats any rotation."""

    __tablename__ = "shift"
    __table_args__ = (Index("ix_shift_unit_role_starts", "unit_id", "role", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    role: str = Field(max_length=16)
    person_id: int = Field(foreign_key="person.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime, index=True)
    source: str = Field(default="api", max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Override(SQLModel, table=True):
    """替班/换班: a person covers [starts_at, ends_at) whatever else says; the newest override wins."""

    __tablename__ = "override"
    __table_args__ = (Index("ix_override_unit_role_starts", "unit_id", "role", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id")
    role: str = Field(max_length=16)
    person_id: int = Field(foreign_key="person.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime, index=True)
    reason: str = Field(default="", max_length=200)
    # The two halves of a swap (换班) share a group, so they are shown and undone together.
    swap_group: str | None = Field(default=None, sa_column=Column(String(32), nullable=True, index=True))
    created_at: datetime = Field(sa_type=UTCDateTime)


class CheckIn(SQLModel, table=True):
    """A duty officer or leader reporting for their shift (one per person and shift)."""

    __tablename__ = "check_in"
    __table_args__ = (UniqueConstraint("unit_id", "role", "person_id", "shift_starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: str = Field(max_length=16)
    person_id: int = Field(foreign_key="person.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    shift_starts_at: datetime = Field(sa_type=UTCDateTime)
    shift_ends_at: datetime = Field(sa_type=UTCDateTime)


class HandoverNote(SQLModel, table=True):
    """交接班: what the outgoing person passes to the incoming one."""

    __tablename__ = "handover_note"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: str = Field(max_length=16)
    from_person_id: int = Field(foreign_key="person.id", index=True)
    to_person_id: int | None = Field(default=None, foreign_key="person.id")
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    open_items: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    shift_starts_at: datetime = Field(sa_type=UTCDateTime)
    shift_ends_at: datetime = Field(sa_type=UTCDateTime)


class CalendarFeed(SQLModel, table=True):
    """The generation of a person's calendar token; bumping it revokes every URL handed out before."""

    __tablename__ = "calendar_feed"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    generation: int = Field(default=0)
    updated_at: datetime = Field(sa_type=UTCDateTime)
