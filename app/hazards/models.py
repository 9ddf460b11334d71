"""Tables of the hazard register: the hazard, its timeline and its evidence photos."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Date, Index, String, Text, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class Level(StrEnum):
    general = "general"
    major = "major"


class Source(StrEnum):
    self_check = "self_check"
    inspection = "inspection"
    public_report = "public_report"
    hotline = "hotline"


class Status(StrEnum):
    open = "open"
    rectifying = "rectifying"
    submitted = "submitted"
    closed = "closed"


class Phase(StrEnum):
    before = "before"
    after = "after"


OPEN_STATUSES = (Status.open, Status.rectifying, Status.submitted)
STATS_COLUMNS = ["status", "level", "listed_tier", "due_at", "found_at"]


class Hazard(SQLModel, table=True):
    """One hazard of the register. `district_code`/`street_code` place it on the tree without a LIKE, so that the
    register, the statistics per child unit and the deadline sweep are plain index look-ups at city scale."""

    __table_args__ = (
        # The statistics per child unit read only these indexes (PostgreSQL: index-only scans, grouped in order).
        Index("ix_hazard_city_stats", "city_code", "district_code", postgresql_include=STATS_COLUMNS),
        Index("ix_hazard_district_stats", "district_code", "street_code", postgresql_include=STATS_COLUMNS),
        Index("ix_hazard_street_found", "street_code", "found_at"),
        # The accountability reports' period scans (app.reports): hazards found in a month, any unit.
        Index("ix_hazard_found_at", "found_at"),
        # The overdue hazards by deadline: the overdue filter and the register's "overdue first".
        Index(
            "ix_hazard_chased_due",
            "due_at",
            postgresql_where=text("status IN ('open', 'rectifying')"),
            sqlite_where=text("status IN ('open', 'rectifying')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(8), unique=True, nullable=False))
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_path: str = Field(sa_column=Column(String(200), nullable=False))
    city_code: str = Field(sa_column=Column(String(12), nullable=False))
    district_code: str | None = Field(default=None, sa_column=Column(String(12), nullable=True))
    street_code: str | None = Field(default=None, sa_column=Column(String(12), nullable=True))
    venue: str = Field(max_length=200)
    venue_category: str = Field(max_length=32, index=True)
    address: str = Field(default="", max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    level: str = Field(max_length=16)
    basis: str = Field(default="", max_length=1000)
    found_at: datetime = Field(sa_type=UTCDateTime)
    source: str = Field(max_length=16)
    responsible_org: str = Field(max_length=200)
    responsible_person: str = Field(max_length=100)
    responsible_phone: str = Field(max_length=20)
    # The rectification deadline, a local date; `due_at` is the instant it passes (the next local midnight).
    deadline: date = Field(sa_column=Column(Date, nullable=False))
    due_at: datetime = Field(sa_type=UTCDateTime)
    measures: str = Field(default="", max_length=2000)
    # The rectification plan (整改方案), set by POST …/plan.
    plan_measures: str | None = Field(default=None, max_length=2000)
    plan_funds_cny: float | None = None
    plan_person: str | None = Field(default=None, max_length=100)
    status: str = Field(max_length=16)
    # 挂牌督办: the tier and unit that listed the hazard for supervision.
    listed_tier: str | None = Field(default=None, max_length=16)
    listed_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    listed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reported_by: str = Field(max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_verifications: int = 0


class HazardEntry(SQLModel, table=True):
    """One line of a hazard's timeline: every transition and every chase step, with actor and time."""

    __tablename__ = "hazard_entry"

    id: int | None = Field(default=None, primary_key=True)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=24)
    actor: str = Field(max_length=120)
    message: str = Field(max_length=1000)
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class HazardPhoto(SQLModel, table=True):
    """Evidence (before/after). The image lives in the data directory under `path`; the row says what it is."""

    __tablename__ = "hazard_photo"

    id: int | None = Field(default=None, primary_key=True)
    hazard_id: int = Field(foreign_key="hazard.id", index=True)
    phase: str = Field(max_length=8)
    path: str = Field(max_length=200)
    content_type: str = Field(max_length=20)
    size_bytes: int
    width: int
    height: int
    sha256: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=120)
    uploaded_at: datetime = Field(sa_type=UTCDateTime)
