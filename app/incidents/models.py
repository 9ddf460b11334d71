from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class Status(StrEnum):
    reported = "reported"
    acknowledged = "acknowledged"
    responding = "responding"
    resolved = "resolved"
    closed = "closed"


OPEN_STATUSES = (Status.reported, Status.acknowledged, Status.responding)


class Incident(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(8), unique=True, nullable=False))
    # Who reported it: "agency:119" or "person:12". With external_id it makes the idempotency key.
    source: str = Field(sa_column=Column(String(80), nullable=False))
    external_id: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    category: str = Field(max_length=20, index=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=5000)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_path: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    address: str = Field(default="", max_length=300)
    lat: float | None = None
    lon: float | None = None
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    deaths: int = 0
    serious_injuries: int = 0
    trapped: int = 0
    missing: int = 0
    economic_loss_cny: float = 0
    sensitive: bool = False
    reported_severity: str | None = Field(default=None, max_length=4)
    computed_severity: str = Field(max_length=4)
    # Set when a leader lowers the level by hand; it holds until new figures arrive.
    manual_severity: str | None = Field(default=None, max_length=4)
    severity: str = Field(max_length=4, index=True)
    lead_tier: str = Field(max_length=16)
    rules_version: int
    status: str = Field(max_length=16, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    first_report_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When the lead tier's next written report is due (首报, then 续报 while open); null when none is.
    report_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # The due time already reported overdue, so each missed deadline pages once.
    overdue_notified_for: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IncidentTier(SQLModel, table=True):
    """The escalation state of one tier for one incident: the timer is `next_step_at`, a row, not memory."""

    __tablename__ = "incident_tier"
    __table_args__ = (UniqueConstraint("incident_id", "tier"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    tier: str = Field(max_length=16)
    unit_id: int = Field(foreign_key="unit.id")
    required: bool = False
    informed: bool = False
    # 0: duty officer paged; 1: leader paged, duty officer reminded; 2: tier above told; 3+: repeats (city).
    step: int = -1
    next_step_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # Pages owed outside the step sequence (an informed tier's notice, a leader paged at once after a re-grade,
    # a running tier told that the tier below did not answer), sent by the tick at `notice_at`.
    notices: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    notice_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    # The tier below whose silence made this one required (its first page says so).
    escalated_from: str | None = Field(default=None, max_length=16)
    required_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    required_because: str | None = Field(default=None, max_length=200)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="person.id")
    acknowledged_by_name: str | None = Field(default=None, max_length=100)
    acknowledged_via: str | None = Field(default=None, max_length=16)


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline_entry"
    # An incident's entries of one kind and tier in time order: the accountability reports (app.reports) look up
    # each tier's first page and each late mark (迟报) here rather than reading the whole timeline.
    __table_args__ = (Index("ix_timeline_entry_incident_kind", "incident_id", "kind", "tier", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=24)
    actor: str = Field(max_length=120)
    tier: str | None = Field(default=None, max_length=16)
    message: str = Field(max_length=1000)
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class ReportKind(StrEnum):
    first = "first"
    follow_up = "follow_up"
    final = "final"


class Report(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: str = Field(max_length=16)
    number: int = Field(description="1 for the first report, then 2, 3, … in order of filing")
    text: str = Field(max_length=10000)
    figures: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    author: str = Field(max_length=120)
    at: datetime = Field(sa_type=UTCDateTime)
    late: bool = False


class Heartbeat(SQLModel, table=True):
    """An integration's liveness: a missed interval pages the city duty officer once."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(80), unique=True, nullable=False))
    agency_id: int = Field(foreign_key="agency.id")
    interval_seconds: int
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    missed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
