"""Notice tables: a notice (or warning, or instruction), one receipt per receiving unit, and CAP messages taken in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class Kind(StrEnum):
    notice = "notice"
    warning = "warning"
    instruction = "instruction"


class NoticeStatus(StrEnum):
    active = "active"
    cancelled = "cancelled"


class ReceiptState(StrEnum):
    pending = "pending"
    signed = "signed"
    overdue = "overdue"


class Notice(SQLModel, table=True):
    """A notice issued by a unit to units below it; `code` is what an SMS reply names."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(8), unique=True, nullable=False))
    kind: str = Field(max_length=16, index=True)
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_path: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    # The addressing as issued: {"scope", "tiers", "units"}.
    to: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    sign_within_seconds: int
    feedback_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    # Warnings: red/orange/yellow/blue, from CAP severity.
    color: str | None = Field(default=None, max_length=8)
    status: str = Field(default=NoticeStatus.active, max_length=16)
    version: int = 1
    issued_by: str = Field(max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NoticeReceipt(SQLModel, table=True):
    """One receiving unit's copy: signed (签收) or not, fed back (反馈) or not, forwarded down or not.

    Its chase (app.notices.chase) holds the timer: a row of app.escalation's, not memory."""

    __tablename__ = "notice_receipt"
    __table_args__ = (UniqueConstraint("notice_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    unit_path: str = Field(sa_column=Column(String(200), nullable=False))
    # The receipt this one was forwarded from (None: addressed by the issuer).
    parent_id: int | None = Field(default=None, foreign_key="notice_receipt.id")
    state: str = Field(default=ReceiptState.pending, max_length=16, index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    signed_by_id: int | None = Field(default=None, foreign_key="person.id")
    signed_by_name: str | None = Field(default=None, max_length=100)
    signed_via: str | None = Field(default=None, max_length=16)
    # The notice version last signed: an update (CAP Update) asks for a new signature.
    signed_version: int | None = None
    feedback: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    feedback_by_name: str | None = Field(default=None, max_length=100)
    feedback_late: bool = False
    forwarded: bool = False
    # Indexed for the accountability reports' period scans (app.reports).
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    # When the issuer's duty officer was told this receipt is overdue (app.notices.jobs); null until then.
    issuer_told_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CapMessage(SQLModel, table=True):
    """A CAP alert taken in, by its identifier: the same identifier again changes nothing."""

    __tablename__ = "cap_message"

    id: int | None = Field(default=None, primary_key=True)
    identifier: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    sender: str = Field(max_length=200)
    sent: datetime = Field(sa_type=UTCDateTime)
    msg_type: str = Field(max_length=16)
    # Set in the same transaction, once the alert has been acted on.
    notice_id: int | None = Field(default=None, foreign_key="notice.id", index=True)
    received_at: datetime = Field(sa_type=UTCDateTime)
    received_by: str = Field(max_length=120)
    document: str = Field(sa_column=Column(Text, nullable=False))
