"""Tables of the notification pipeline: the outbox (every message that leaves) and webhook subscriptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, SmallInteger, String, Text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class Channel(StrEnum):
    sms = "sms"
    voice = "voice"
    webhook = "webhook"
    robot = "robot"


class Status(StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    undelivered = "undelivered"


# A status only ever moves forward; a late or repeated provider callback cannot move a row back.
STATUS_RANK = {
    Status.queued: 0,
    Status.sending: 1,
    Status.sent: 2,
    Status.delivered: 3,
    Status.failed: 3,
    Status.undelivered: 3,
}
FINAL = frozenset({Status.delivered, Status.failed, Status.undelivered})


class ErrorClass(StrEnum):
    """What a provider's answer means for one recipient (PRODUCT.md §8)."""

    ok = "ok"
    rate_limited = "rate_limited"
    # The number can never get this message (not a mobile, not a valid number, unsubscribed): no provider will.
    recipient_invalid = "recipient_invalid"
    # The provider rejects the template, its parameters or the sign name: its binding must be fixed.
    template_invalid = "template_invalid"
    # Credentials, balance or a suspended account: an operator can fix it while the message waits.
    account = "account"
    transient = "transient"
    permanent = "permanent"


class OutboxMessage(SQLModel, table=True):
    """One message to the outside world, written in the transaction of the change that caused it."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
        Index("ix_outbox_message_due_priority", "status", "priority", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    # A phone number in E.164 for sms/voice, the endpoint URL for webhooks.
    recipient: str = Field(sa_column=Column(String(500), nullable=False, index=True))
    template: str = Field(max_length=40)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The dispatcher takes due rows gravest first: 1-4 for a level I-IV incident's pages, 5 for everything else.
    priority: int = Field(default=5, sa_column=Column(SmallInteger, nullable=False, server_default="5"))
    # Rendered at enqueue time, so what was said is on record even if templates change later.
    body: str = Field(sa_column=Column(Text, nullable=False))
    dedup_key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    # The incidents table comes later; the foreign key is added with it.
    incident_id: int | None = Field(default=None, index=True)
    # The short code an SMS reply names (`1 <code>`): an incident's, a roll-call's or a notice's.
    incident_code: str | None = Field(default=None, sa_column=Column(String(12), nullable=True, index=True))
    # What a page outside incidents is about, "<kind>:<id>" (e.g. "rollcall:12", "notice:40"): a reply or a
    # keypress to it is routed to that kind's answer (see app.notify.inbound.routed).
    subject: str | None = Field(default=None, sa_column=Column(String(40), nullable=True, index=True))
    tier: str | None = Field(default=None, max_length=16)
    step: int | None = Field(default=None)
    subscription_id: int | None = Field(default=None, foreign_key="webhook_subscription.id", index=True)
    event_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True, index=True))
    # A group robot's post (channel `robot`): the recipient is then `robot:<id>`, never the URL with its key.
    robot_id: int | None = Field(default=None, foreign_key="unit_robot.id", index=True)

    status: str = Field(default=Status.queued, sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    # Set while a dispatcher holds the row in `sending`; past it, the row is claimed again (the holder died).
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The last attempt may have reached the provider (a timeout, a lost lease): check before sending again.
    uncertain: bool = Field(default=False)
    # Which provider carried it (twilio, aliyun, tencent, …): set by the send that went out, or the last tried.
    provider: str | None = Field(default=None, max_length=16)
    provider_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True, unique=True))
    provider_status: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error_class: str | None = Field(default=None, max_length=24)
    created_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_via: str | None = Field(default=None, max_length=16)


class WebhookSubscription(SQLModel, table=True):
    """An endpoint that receives signed incident events, owned by an agency (API key) or set up by an admin."""

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=500)
    # Kept in clear because every delivery is signed with it; never logged, shown only when created.
    secret: str = Field(max_length=200)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    min_severity: str | None = Field(default=None, max_length=4)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    unit_path: str | None = Field(default=None, sa_column=Column(String(200), nullable=True, index=True))
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    created_by: str = Field(max_length=120)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProviderPush(SQLModel, table=True):
    """One item of a provider's receipt or reply push, by its natural key: a repeated push is applied once."""

    __tablename__ = "provider_push"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    provider: str = Field(max_length=16)
    kind: str = Field(max_length=16)
    received_at: datetime = Field(sa_type=UTCDateTime)


class HeldReceipt(SQLModel, table=True):
    """A receipt for a provider id no row carries yet: Tencent's report names only the send's SerialNo, and it can
    arrive before the dispatcher has recorded that SerialNo. Applied when the id is recorded (app.notify.receipts)."""

    __tablename__ = "held_receipt"

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=16)
    provider_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    status: str = Field(max_length=32)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=200)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)


class RobotKind(StrEnum):
    wecom = "wecom"
    dingtalk = "dingtalk"


class UnitRobot(SQLModel, table=True):
    """A unit's group robot (WeCom or DingTalk): pages for the unit's tier are also posted to its group."""

    __tablename__ = "unit_robot"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    # Carries the robot's key (WeCom) or access token (DingTalk): shown only masked, never logged.
    webhook_url: str = Field(sa_column=Column(String(500), nullable=False))
    # DingTalk's signing secret, kept in clear because every post is signed with it; never shown or logged.
    secret: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_by: str = Field(max_length=120)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
