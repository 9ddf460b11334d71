"""Webhook subscriptions, fan-out of incident events to them (as outbox rows), and replays.

An event is an envelope `{"id", "type", "created_at", "data": {"incident": {...}}}`, rendered once and
stored as the body of one outbox row per matching subscription; the dispatcher signs each delivery with
the subscription's secret (`X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`) and sends the event
id as `X-Webhook-Id`, the same on every retry, so receivers can drop duplicates.
"""

from __future__ import annotations

import json
import secrets as secrets_module
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from app import audit, netguard
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.notify import outbox
from app.notify.models import Channel, OutboxMessage, Status, WebhookSubscription
from app.org import paths
from app.org import units as unit_service
from app.org.models import Agency, Unit

EVENT_TYPES = (
    "incident.created",
    "incident.updated",
    "incident.severity_changed",
    "incident.escalated",
    "incident.acknowledged",
    "incident.resolved",
    "incident.closed",
)
SEVERITY_RANK = {"I": 1, "II": 2, "III": 3, "IV": 4}  # I is the gravest
Severity = Literal["I", "II", "III", "IV"]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=500, examples=["https://cad.example.gov.cn/hooks/dutyline"])
    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="generated when absent; shown only in this answer"
    )
    event_types: list[str] = Field(default_factory=lambda: list(EVENT_TYPES), min_length=1)
    categories: list[str] = Field(default_factory=list, description="empty: every category")
    min_severity: Severity | None = Field(default=None, description="I..IV; III receives I, II and III")
    unit_code: str | None = Field(default=None, description="only incidents in this unit's subtree")
    agency_code: str | None = Field(default=None, description="admins only: the agency this subscription is for")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
        return sorted(set(value), key=EVENT_TYPES.index)


class SubscriptionPublic(BaseModel):
    id: int
    url: str
    event_types: list[str]
    categories: list[str]
    min_severity: str | None
    unit_code: str | None
    agency_code: str | None
    created_by: str
    created_at: datetime


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(description="signs every delivery; store it now, it is not shown again")


class DeliveryPublic(BaseModel):
    id: int
    subscription_id: int | None
    event_id: str | None
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def public(sub: WebhookSubscription, unit: Unit | None, agency: Agency | None) -> SubscriptionPublic:
    assert sub.id is not None
    return SubscriptionPublic(
        id=sub.id,
        url=sub.url,
        event_types=sub.event_types,
        categories=sub.categories,
        min_severity=sub.min_severity,
        unit_code=unit.code if unit else None,
        agency_code=agency.code if agency else None,
        created_by=sub.created_by,
        created_at=sub.created_at,
    )


def delivery_public(row: OutboxMessage) -> DeliveryPublic:
    assert row.id is not None
    return DeliveryPublic(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        url=row.recipient,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _details(session: Session, sub: WebhookSubscription) -> tuple[Unit | None, Agency | None]:
    unit = session.get(Unit, sub.unit_id) if sub.unit_id else None
    agency = session.get(Agency, sub.agency_id) if sub.agency_id else None
    return unit, agency


def _may_manage(actor: Principal, sub: WebhookSubscription, unit: Unit | None) -> None:
    """An agency manages its own subscriptions; a person with webhooks:write those within their scope."""
    authorize(actor, "webhooks:write")
    if actor.kind == "agency":
        if sub.agency_id != actor.id:
            raise NotFound(f"no webhook subscription {sub.id}")
        return
    if unit is not None:
        authorize(actor, "webhooks:write", unit)
    elif not actor.covers_whole_tree:
        raise Forbidden(f"only city-level principals may manage subscriptions without a unit; {actor.actor} may not")


def create(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    data: SubscriptionCreate,
    allow_private: bool = False,
    resolver: netguard.Resolver = netguard.system_resolver,
) -> SubscriptionCreated:
    """Add a subscription; the secret is generated when not given and returned only here.

    The URL may not point inside (loopback, private, link-local …) unless `allow_private`."""
    authorize(actor, "webhooks:write")
    try:
        netguard.check_url(data.url, allow_private=allow_private, resolver=resolver)
    except netguard.Refused as exc:
        raise Invalid.field("url", exc.reason) from exc
    unit: Unit | None = None
    if data.unit_code:
        unit = unit_service.get(session, data.unit_code, field="unit_code")
    elif actor.unit_path is not None and "/" in actor.unit_path and actor.unit_code:
        unit = unit_service.get(session, actor.unit_code)  # a scoped principal hears only its own subtree
    if unit is not None:
        authorize(actor, "webhooks:write", unit)
    agency_id: int | None = None
    if actor.kind == "agency":
        if data.agency_code is not None:
            raise Invalid.field("agency_code", "an agency's subscriptions are always its own")
        agency_id = actor.id
    elif data.agency_code is not None:
        agency = session.exec(select(Agency).where(Agency.code == data.agency_code)).first()
        if agency is None:
            raise Invalid.field("agency_code", f"no agency {data.agency_code!r}")
        agency_id = agency.id
    sub = WebhookSubscription(
        url=data.url,
        secret=data.secret or "whsec_" + secrets_module.token_urlsafe(32),
        event_types=data.event_types,
        categories=sorted(set(data.categories)),
        min_severity=data.min_severity,
        unit_id=unit.id if unit else None,
        unit_path=unit.path if unit else None,
        agency_id=agency_id,
        created_by=actor.actor,
        created_at=clock.now(),
    )
    session.add(sub)
    session.flush()
    unit, agency = _details(session, sub)
    shown = public(sub, unit, agency)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="webhook_subscription.create",
        object_type="webhook_subscription",
        object_id=sub.id,
        unit_path=sub.unit_path,
        after=shown.model_dump(mode="json"),  # never the secret
    )
    return SubscriptionCreated(**shown.model_dump(), secret=sub.secret)


def listing(session: Session, *, actor: Principal) -> list[SubscriptionPublic]:
    """The active subscriptions the actor may see: an agency its own; a person those within their scope."""
    authorize(actor, "webhooks:read")
    query = select(WebhookSubscription).where(col(WebhookSubscription.active).is_(True))
    if actor.kind == "agency":
        query = query.where(WebhookSubscription.agency_id == actor.id)
    elif not actor.covers_whole_tree and actor.unit_path:
        query = query.where(paths.sql_within(col(WebhookSubscription.unit_path), actor.unit_path))
    rows = session.exec(query.order_by(col(WebhookSubscription.id))).all()
    return [public(sub, *_details(session, sub)) for sub in rows]


def _get(session: Session, subscription_id: int) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or not sub.active:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return sub


def delete(session: Session, *, clock: Clock, actor: Principal, subscription_id: int) -> None:
    """Stop a subscription. Its queued deliveries fail (nothing to sign them with once it is gone)."""
    sub = _get(session, subscription_id)
    unit, agency = _details(session, sub)
    _may_manage(actor, sub, unit)
    before = public(sub, unit, agency).model_dump(mode="json")
    sub.active = False
    sub.deleted_at = clock.now()
    session.add(sub)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="webhook_subscription.delete",
        object_type="webhook_subscription",
        object_id=sub.id,
        unit_path=sub.unit_path,
        before=before,
    )


def deliveries(session: Session, *, actor: Principal, subscription_id: int, limit: int = 50) -> list[DeliveryPublic]:
    """The newest deliveries of a subscription, with their status and last error."""
    sub = _get(session, subscription_id)
    unit, _ = _details(session, sub)
    _may_manage(actor, sub, unit)
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.subscription_id == sub.id)
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    return [delivery_public(r) for r in session.exec(query).all()]


def replay(session: Session, *, clock: Clock, actor: Principal, delivery_id: int) -> DeliveryPublic:
    """Send a finished delivery again (typically a dead-lettered one), with the same event id."""
    row = session.get(OutboxMessage, delivery_id)
    if row is None or row.channel != Channel.webhook or row.subscription_id is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    sub = _get(session, row.subscription_id)
    unit, _ = _details(session, sub)
    _may_manage(actor, sub, unit)
    if row.status in (Status.queued, Status.sending):
        raise Conflict(f"delivery {delivery_id} is still {row.status}; it can be replayed once it has finished")
    before = delivery_public(row).model_dump(mode="json")
    outbox.requeue(session, clock=clock, message=row)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="webhook_delivery.replay",
        object_type="webhook_delivery",
        object_id=delivery_id,
        unit_path=sub.unit_path,
        before=before,
    )
    return delivery_public(row)


def matches(sub: WebhookSubscription, *, event_type: str, category: str, severity: str, unit_path: str) -> bool:
    """Whether a subscription's filters let an event through."""
    if event_type not in sub.event_types:
        return False
    if sub.categories and category not in sub.categories:
        return False
    if sub.min_severity and SEVERITY_RANK.get(severity, 4) > SEVERITY_RANK[sub.min_severity]:
        return False
    return not (sub.unit_path and not paths.within(unit_path, sub.unit_path))


def envelope(*, event_id: str, event_type: str, created_at: datetime, incident: dict[str, Any]) -> str:
    body = {"id": event_id, "type": event_type, "created_at": created_at.isoformat(), "data": {"incident": incident}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


# Built once: every incident event runs it.
_ACTIVE = (
    select(WebhookSubscription).where(col(WebhookSubscription.active).is_(True)).order_by(col(WebhookSubscription.id))
)


def publish(
    session: Session,
    *,
    clock: Clock,
    event_type: str,
    incident: dict[str, Any],
    category: str,
    severity: str,
    unit_path: str,
    agency_codes: Sequence[str] | Callable[[], Sequence[str]] = (),
    event_id: str | None = None,
) -> int:
    """Fan an event out to every matching subscription as outbox rows in the caller's transaction.

    Subscriptions of the agencies in `agency_codes` (the rules' "agencies by category") receive it whatever
    their category, severity and unit filters, as long as they take this event type (a callable is asked only
    when there is any subscription). Returns the row count.
    """
    if event_type not in EVENT_TYPES:
        raise Invalid.field("event_type", f"must be one of {', '.join(EVENT_TYPES)}")
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    now = clock.now()
    # Subscriptions and agencies are never what the caller's transaction is writing: no need to flush it first.
    with session.no_autoflush:
        subs = session.exec(_ACTIVE).all()
        if not subs:
            return 0
        codes = agency_codes() if callable(agency_codes) else agency_codes
        forced: set[int] = set()
        if codes:
            query = select(Agency.id).where(col(Agency.code).in_(list(codes)))
            forced = {a for a in session.exec(query).all() if a is not None}
    body = envelope(event_id=event_id, event_type=event_type, created_at=now, incident=incident)
    count = 0
    for sub in subs:
        wanted = (sub.agency_id in forced and event_type in sub.event_types) or matches(
            sub, event_type=event_type, category=category, severity=severity, unit_path=unit_path
        )
        if not wanted:
            continue
        row = outbox.enqueue(
            session,
            outbox.message(
                clock=clock,
                channel=Channel.webhook.value,
                to=sub.url,
                template="webhook_event",
                params={"event_type": event_type},
                body=body,
                dedup_key=f"webhook:{event_id}:{sub.id}",
                incident_id=incident.get("id") if isinstance(incident.get("id"), int) else None,
                incident_code=incident.get("code") if isinstance(incident.get("code"), str) else None,
                subscription_id=sub.id,
                event_id=event_id,
            ),
        )
        count += row is not None
    return count
