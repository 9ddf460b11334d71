"""The outbox: every message is a row written in the caller's transaction, then sent by the dispatcher.

`enqueue` is the only way a message enters the pipeline. Its dedup key is unique, so a repeated enqueue
(a tick that runs twice, a retried request) is a no-op that leaves the caller's transaction intact.

A row's status moves only through the functions here: `claim` (due rows become `sending` under a lease),
`finish` (an attempt's row becomes `sent`/`delivered`, `queued` again for a retry, or `failed`),
`apply_provider_status` (a receipt), `mark_answered` (the acknowledgement) and `requeue` (a replay). The
dispatcher decides which outcome an attempt has (its policy: backoff, errors that fail at once); these write it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, String, and_, bindparam, event, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app.clock import Clock
from app.db import insert_many_unless_conflict, insert_unless_conflict, is_postgres
from app.errors import Invalid
from app.notify import fallback, receipts, templates
from app.notify.delivery import DeliveryEvent
from app.notify.models import FINAL, STATUS_RANK, Channel, ErrorClass, OutboxMessage, Status

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


def mark_answered(session: Session, *, clock: Clock, subject: str | Select[Any], via: str) -> None:
    """Every page about `subject` (or about any subject the given query selects) counts as answered, so the next
    plain "1" from the phone goes to another page."""
    column = col(OutboxMessage.subject)
    about = column == subject if isinstance(subject, str) else column.in_(subject)
    session.execute(
        update(OutboxMessage)
        .where(about, col(OutboxMessage.acknowledged_at).is_(None))
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


# ---- the dispatcher's transitions: claim due rows, finish their attempts ----


@dataclass(frozen=True)
class Claimed:
    """What `claim` took. `rows` are the rows to send, as read before the claim (their `attempts` does not count
    this attempt yet); `orphans` the ids among them found `sending` past their lease (their holder died
    mid-send: the message may have gone out, so the row is now uncertain); `given_up` the orphans whose attempts
    were spent, now `failed` and not to be sent."""

    rows: list[Row[Any]]
    orphans: frozenset[int] = frozenset()
    given_up: frozenset[int] = frozenset()


def claim(session: Session, *, clock: Clock, limit: int, lease: timedelta, max_attempts: int) -> Claimed:
    """Take up to `limit` due rows (and every due post of their robots) for one more attempt, `sending` for `lease`."""
    # Core statements, not ORM objects: at hundreds of messages a second the ORM's bookkeeping held
    # the GIL long enough to slow the sending threads down (measured with bench/bench_sms.py).
    t = _TABLE
    now = clock.now()
    due = or_(
        and_(t.c.status == Status.queued.value, t.c.next_attempt_at <= now),
        and_(t.c.status == Status.sending.value, t.c.lease_until <= now),
    )
    query = (
        sa_select(
            t.c.id,
            t.c.channel,
            t.c.recipient,
            t.c.body,
            t.c.template,
            t.c.params,
            t.c.attempts,
            t.c.uncertain,
            t.c.status,
            t.c.incident_code,
            t.c.event_id,
            t.c.subscription_id,
            t.c.provider,
            t.c.created_at,
            t.c.robot_id,
        )
        .where(due)
        .order_by(t.c.priority, t.c.next_attempt_at, t.c.id)
    )
    # `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never claim the same row; SQLite has a single writer.
    locking = is_postgres(session)
    rows = list(
        session.execute(query.limit(limit).with_for_update(skip_locked=True) if locking else query.limit(limit)).all()
    )
    if not rows:
        return Claimed([])
    robot_ids = {r.robot_id for r in rows if r.robot_id is not None}
    if robot_ids:
        # Every due post of a robot goes in one message, even those past the claim's limit.
        more = query.where(t.c.robot_id.in_(robot_ids), t.c.id.notin_([r.id for r in rows]))
        rows += session.execute(more.with_for_update(skip_locked=True) if locking else more).all()
    # A row found in `sending` lost its holder mid-send: it may have gone out.
    orphans = {r.id for r in rows if r.status == Status.sending}
    exhausted = {r.id for r in rows if r.id in orphans and r.attempts >= max_attempts}
    if exhausted:
        session.execute(
            update(t)
            .where(t.c.id.in_(exhausted))
            .values(
                status=Status.failed.value,
                lease_until=None,
                uncertain=True,
                last_error=t.c.attempts.cast(String) + " attempts, the last one interrupted: gave up",
            )
        )
        fallback.after_failure(session, clock=clock, ids=exhausted)
    take = [r for r in rows if r.id not in exhausted]
    if take:
        session.execute(
            update(t)
            .where(t.c.id.in_([r.id for r in take]))
            .values(
                status=Status.sending.value,
                attempts=t.c.attempts + 1,
                lease_until=now + lease,
                uncertain=t.c.uncertain | t.c.id.in_(orphans) if orphans else t.c.uncertain,
            )
        )
    return Claimed(take, frozenset(orphans - exhausted), frozenset(exhausted))


@dataclass(frozen=True)
class Sent:
    """An attempt the provider took (`id` and `attempts` name the attempt that holds the row): `sent`, or
    `delivered` when its answer confirmed delivery. `at` is when the provider answered: a message's sent_at is
    when it was handed over, not when that was recorded."""

    id: int
    attempts: int
    provider: str | None
    provider_id: str | None
    at: datetime
    delivered: bool = False


@dataclass(frozen=True)
class Retry:
    """An attempt that failed for now: `queued` again, due at `next_attempt_at`."""

    id: int
    attempts: int
    provider: str | None
    error: str
    error_class: ErrorClass
    next_attempt_at: datetime
    # The attempt may have gone out all the same: the next one asks the provider first.
    uncertain: bool = False


@dataclass(frozen=True)
class Failed:
    """An attempt after which the row is `failed` for good."""

    id: int
    attempts: int
    provider: str | None
    error: str
    error_class: ErrorClass


def finish(
    session: Session,
    *,
    clock: Clock,
    sent: Sequence[Sent] = (),
    retry: Sequence[Retry] = (),
    failed: Sequence[Failed] = (),
) -> list[DeliveryEvent]:
    """Record what attempts came to; the failures reported by the held receipts this releases."""
    # Conditional updates: only the attempt that holds the row (status `sending`, same attempt number) may
    # finish it; a receipt that got there first, or a newer attempt, wins. Core statements, as in `claim`.
    t = _TABLE
    events: list[DeliveryEvent] = []
    held = and_(
        t.c.id == bindparam("b_id"), t.c.status == Status.sending.value, t.c.attempts == bindparam("b_attempts")
    )
    if sent:
        session.execute(
            update(t)
            .where(held)
            .values(
                status=bindparam("b_status"),
                provider=func.coalesce(bindparam("b_provider"), t.c.provider),
                provider_id=func.coalesce(bindparam("b_provider_id"), t.c.provider_id),
                sent_at=func.coalesce(t.c.sent_at, bindparam("b_sent_at")),
                delivered_at=bindparam("b_delivered_at"),
                lease_until=None,
                uncertain=False,
                error_class=None,
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_id": s.id,
                    "b_attempts": s.attempts,
                    "b_provider": s.provider,
                    "b_status": Status.delivered.value if s.delivered else Status.sent.value,
                    "b_provider_id": s.provider_id,
                    "b_sent_at": s.at,
                    "b_delivered_at": s.at if s.delivered else None,
                }
                for s in sent
            ],
        )
        # A receipt that came before this answer was recorded (Tencent names only its SerialNo) applies now.
        recorded = {s.provider_id for s in sent if s.provider_id}
        if recorded:
            events += receipts.release(session, clock=clock, provider_ids=recorded)
    if retry:
        session.execute(
            update(t)
            .where(held)
            .values(
                status=Status.queued.value,
                provider=func.coalesce(bindparam("b_provider"), t.c.provider),
                last_error=bindparam("b_error"),
                error_class=bindparam("b_class"),
                next_attempt_at=bindparam("b_next"),
                uncertain=t.c.uncertain | bindparam("b_uncertain"),
                lease_until=None,
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_id": r.id,
                    "b_attempts": r.attempts,
                    "b_provider": r.provider,
                    "b_error": r.error,
                    "b_class": r.error_class.value,
                    "b_next": r.next_attempt_at,
                    "b_uncertain": r.uncertain,
                }
                for r in retry
            ],
        )
    if failed:
        session.execute(
            update(t)
            .where(held)
            .values(
                status=Status.failed.value,
                provider=func.coalesce(bindparam("b_provider"), t.c.provider),
                last_error=bindparam("b_error"),
                error_class=bindparam("b_class"),
                lease_until=None,
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "b_id": f.id,
                    "b_attempts": f.attempts,
                    "b_provider": f.provider,
                    "b_error": f.error,
                    "b_class": f.error_class.value,
                }
                for f in failed
            ],
        )
        fallback.after_failure(session, clock=clock, ids=[f.id for f in failed])
    return events
