"""The outbox: every message is a row written in the caller's transaction, then sent by the dispatcher.

`enqueue` is the only way a message enters the pipeline. Its dedup key is unique, so a repeated enqueue
(a tick that runs twice, a retried request) is a no-op that leaves the caller's transaction intact.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app.clock import Clock
from app.db import insert_many_unless_conflict, insert_unless_conflict
from app.errors import Invalid
from app.notify import fallback, templates
from app.notify.models import FINAL, STATUS_RANK, Channel, OutboxMessage, Status

_WAKE_FLAG = "notify.outbox.enqueued"
_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def add_wake_listener(callback: Callable[[], None]) -> None:
    """Call `callback` after any transaction that enqueued a message commits (in this process)."""
    with _listeners_lock:
        _listeners.append(callback)


def remove_wake_listener(callback: Callable[[], None]) -> None:
    with _listeners_lock:
        if callback in _listeners:
            _listeners.remove(callback)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop(_WAKE_FLAG, False):
        with _listeners_lock:
            callbacks = list(_listeners)
        for callback in callbacks:
            callback()


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    # Rolled-back rows were never there: nobody needs waking.
    session.info.pop(_WAKE_FLAG, None)


# Gravest first when the dispatcher has more due than it can send at once (a burst): by the incident's level.
PRIORITY = {"I": 1, "II": 2, "III": 3, "IV": 4}
OTHER_PRIORITY = 5


def message(
    *,
    clock: Clock,
    channel: str,
    to: str,
    template: str,
    params: dict[str, Any],
    dedup_key: str,
    person_id: int | None = None,
    incident_id: int | None = None,
    incident_code: str | None = None,
    tier: str | None = None,
    step: int | None = None,
    body: str | None = None,
    subscription_id: int | None = None,
    event_id: str | None = None,
    subject: str | None = None,
    robot_id: int | None = None,
) -> dict[str, Any]:
    """A checked outbox row, its text rendered, ready for `enqueue_many`."""
    if channel not in Channel.__members__:
        raise Invalid.field("channel", f"must be one of {', '.join(Channel)}")
    if not to:
        raise Invalid.field("to", "a recipient is required")
    if not dedup_key or len(dedup_key) > 200:
        raise Invalid.field("dedup_key", "must be 1 to 200 characters")
    text = body if body is not None else templates.render(template, params)
    now = clock.now()
    return {
        "priority": PRIORITY.get(str(params.get("level", "")), OTHER_PRIORITY),
        "channel": channel,
        "recipient": to,
        "template": template,
        "params": params,
        "body": text,
        "dedup_key": dedup_key,
        "person_id": person_id,
        "incident_id": incident_id,
        "incident_code": incident_code,
        "tier": tier,
        "step": step,
        "subscription_id": subscription_id,
        "event_id": event_id,
        "subject": subject,
        "robot_id": robot_id,
        "status": Status.queued.value,
        "attempts": 0,
        "next_attempt_at": now,
        "uncertain": False,
        "created_at": now,
    }


def enqueue(session: Session, row: dict[str, Any]) -> int | None:
    """Queue one message built by `message` in the caller's transaction: the new row's id, or None (and nothing
    written) when the dedup key exists."""
    new_id = insert_unless_conflict(session, _TABLE, row, on=("dedup_key",))
    if new_id is None:
        return None
    session.info[_WAKE_FLAG] = True
    return int(new_id)


def enqueue_many(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Queue messages built by `message` with one statement: the dedup keys written (a key that exists, or
    that comes twice in `rows`, is written once at most)."""
    written: set[str] = insert_many_unless_conflict(session, _TABLE, rows, on=("dedup_key",), returning="dedup_key")
    if written:
        session.info[_WAKE_FLAG] = True
    return written


def mark_answered(session: Session, *, clock: Clock, subject: str, via: str) -> None:
    """Every page about `subject` counts as answered, so the next plain "1" from the phone goes to another page."""
    session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.subject) == subject, col(OutboxMessage.acknowledged_at).is_(None))
        .values(acknowledged_at=clock.now(), acknowledged_via=via)
        .execution_options(synchronize_session=False)
    )


def get(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def for_incident(session: Session, incident_id: int) -> list[OutboxMessage]:
    """Every message about an incident, oldest first (for the incident's notifications view)."""
    query = select(OutboxMessage).where(OutboxMessage.incident_id == incident_id).order_by(col(OutboxMessage.id))
    return list(session.exec(query).all())


# Provider statuses (Twilio's MessageStatus / CallStatus) and what they mean for a row.
PROVIDER_STATUS = {
    "accepted": Status.sent,
    "queued": Status.sent,
    "sending": Status.sent,
    "sent": Status.sent,
    "ringing": Status.sent,
    "initiated": Status.sent,
    "in-progress": Status.delivered,
    "answered": Status.delivered,
    "completed": Status.delivered,
    "delivered": Status.delivered,
    "read": Status.delivered,
    "undelivered": Status.undelivered,
    "failed": Status.failed,
    "busy": Status.undelivered,
    "no-answer": Status.undelivered,
    "canceled": Status.failed,
}


def apply_provider_status(
    session: Session,
    *,
    clock: Clock,
    provider_id: str,
    provider_status: str,
    message_id: int | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> OutboxMessage | None:
    """A delivery receipt: move the row forward (never back). Found by provider id, or by our own id
    when the receipt arrives before the send call returned the provider id."""
    row = session.exec(select(OutboxMessage).where(OutboxMessage.provider_id == provider_id)).first()
    if row is None and message_id is not None:
        row = session.get(OutboxMessage, message_id)
        if row is not None and row.provider_id not in (None, provider_id):
            return None  # a receipt for another send of the same row; the recorded one wins
    if row is None:
        return None
    target = PROVIDER_STATUS.get(provider_status.lower())
    now = clock.now()
    if row.provider_id is None:
        row.provider_id = provider_id
    row.provider_status = provider_status
    if target is not None and row.status not in FINAL and STATUS_RANK[target] > STATUS_RANK[Status(row.status)]:
        row.status = target
        row.lease_until = None
        if row.sent_at is None:
            row.sent_at = now
        if target == Status.delivered:
            row.delivered_at = now
        elif target in (Status.failed, Status.undelivered):
            row.error_class = "permanent"
            row.last_error = f"provider reported {provider_status}" + (
                f" (error {error_code}{': ' + error_message if error_message else ''})" if error_code else ""
            )
    session.add(row)
    session.flush()
    if row.status in (Status.failed, Status.undelivered) and row.id is not None:
        fallback.after_failure(session, clock=clock, ids=[row.id])
    return row


def requeue(session: Session, *, clock: Clock, message: OutboxMessage) -> OutboxMessage:
    """Send a finished message again (a webhook replay): a fresh set of attempts from now."""
    now: datetime = clock.now()
    session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message.id)
        .values(
            status=Status.queued.value,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            uncertain=False,
            error_class=None,
            delivered_at=None,
        )
    )
    session.info[_WAKE_FLAG] = True
    session.refresh(message)
    return message
