"""Batch writes (app.db.insert_many, insert_many_unless_conflict): on PostgreSQL one unnested statement, on
SQLite the driver's own way; both must store the same values and report the same rows written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.db import insert_many
from app.notify import outbox
from app.notify.models import OutboxMessage


def _row(clock: ManualClock, key: str, to: str = "+8613700000001") -> dict[str, object]:
    return outbox.message(clock=clock, channel="sms", to=to, template="ack_help", params={}, dedup_key=key)


def test_a_batch_reports_only_the_rows_it_wrote(session: Session, clock: ManualClock) -> None:
    assert outbox.enqueue_many(session, [_row(clock, "k1")]) == {"k1"}
    # An existing key, a new one, and a new one given twice in the same batch.
    written = outbox.enqueue_many(session, [_row(clock, "k1"), _row(clock, "k2"), _row(clock, "k3"), _row(clock, "k3")])
    assert written == {"k2", "k3"}
    keys = session.exec(select(OutboxMessage.dedup_key).order_by(col(OutboxMessage.id))).all()
    assert keys == ["k1", "k2", "k3"]


def test_batch_rows_keep_their_values(session: Session, clock: ManualClock) -> None:
    at = datetime(2026, 4, 18, 3, 50, 7, 123456, tzinfo=UTC)
    params = {"code": "F1", "codes": ["F1", "二"]}
    first = _row(clock, "v1") | {"created_at": at, "params": params, "body": "通知(短信)", "person_id": None}
    second = _row(clock, "v2", to="+8613700000002") | {"created_at": at + timedelta(seconds=1), "subject": None}
    insert_many(session, OutboxMessage.__table__, [first, second])  # type: ignore[attr-defined]
    got = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    assert [(m.dedup_key, m.recipient, m.created_at, m.params, m.body, m.status) for m in got] == [
        ("v1", "+8613700000001", at, params, "通知(短信)", "queued"),
        ("v2", "+8613700000002", at + timedelta(seconds=1), {}, second["body"], "queued"),
    ]
    assert all(m.created_at.tzinfo is not None for m in got)
