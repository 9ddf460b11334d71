"""Tables of the step machine's generic part: one row per chase (a post owes an answer) and its events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class ChaseStatus(StrEnum):
    open = "open"  # waiting for its next step (next_step_at) or for an answer
    answered = "answered"  # the answer came: no more steps
    done = "done"  # a one-shot alert found its person
    exhausted = "exhausted"  # the ladder ran out past the city's leader without an answer
    all_vacant = "all_vacant"  # every post of the ladder was vacant: the admins were told
    cancelled = "cancelled"  # the kind withdrew it (the thing chased no longer needs an answer)


class Chase(SQLModel, table=True):
    """A post (unit + duty role) owes an answer about a thing (`kind` + `subject`); `next_step_at` is its timer."""

    __tablename__ = "chase"
    __table_args__ = (
        UniqueConstraint("kind", "subject"),
        # The tick's claim (open chases in timer order, the first 200) walks this and stops; an index of every
        # timer had PostgreSQL read and sort all the day's due chases first (15,000 in the hazard bench).
        Index(
            "ix_chase_open_due",
            "next_step_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=24)
    subject: str = Field(max_length=80)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    role: str = Field(max_length=16)
    # The rung of the ladder taken last (-1: none yet); see app.escalation.chase.ladder.
    step: int = -1
    # Seconds each rung waits for the answer before the next one; null: a one-shot alert.
    window_seconds: int | None = None
    next_step_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default=ChaseStatus.open, max_length=16)
    # How many people this chase paged so far (0 when the whole ladder was vacant).
    paged: int = 0
    dedup_prefix: str = Field(max_length=24)
    post_template: str = Field(max_length=40)
    leader_template: str = Field(max_length=40)
    above_template: str = Field(max_length=40)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # A short code its pages carry, so that a reply "1 <code>" answers this chase (an incident's code for a late
    # report, a roll-call's own code); and the incident it is about, if any.
    code: str | None = Field(default=None, max_length=12)
    incident_id: int | None = None
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_by: str | None = Field(default=None, max_length=120)


class ChaseEvent(SQLModel, table=True):
    """What a chase did, in order: page, vacant, all_vacant, exhausted, answered, cancelled."""

    __tablename__ = "chase_event"

    id: int | None = Field(default=None, primary_key=True)
    chase_id: int = Field(foreign_key="chase.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=24)
    message: str = Field(max_length=500)
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
