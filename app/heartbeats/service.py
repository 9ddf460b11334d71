"""Integration heartbeats: an agency system pings; a missed interval pages the city duty officer once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Forbidden
from app.incidents.models import Heartbeat


def ping(session: Session, *, clock: Clock, actor: Principal, name: str, interval_seconds: int) -> Heartbeat:
    """Record a ping; the next one is due `interval_seconds` from now. A ping after a miss records recovery."""
    authorize(actor, "heartbeats:write")
    if actor.kind != "agency" or actor.id is None:
        raise Forbidden("heartbeats are sent by agency systems with their API key")
    now = clock.now()
    hb = session.exec(select(Heartbeat).where(Heartbeat.name == name).with_for_update()).first()
    if hb is None:
        hb = Heartbeat(
            name=name,
            agency_id=actor.id,
            interval_seconds=interval_seconds,
            last_seen_at=now,
            due_at=now + timedelta(seconds=interval_seconds),
        )
        session.add(hb)
        session.flush()
        audit.record(
            session,
            clock=clock,
            actor=actor,
            action="heartbeat.create",
            object_type="heartbeat",
            object_id=name,
            after={"interval_seconds": interval_seconds},
        )
        return hb
    if hb.agency_id != actor.id:
        raise Forbidden(f"the heartbeat {name!r} belongs to another agency")
    if hb.missed_at is not None:
        audit.record(
            session,
            clock=clock,
            actor=actor,
            action="heartbeat.recovered",
            object_type="heartbeat",
            object_id=name,
            before={"missed_at": hb.missed_at.isoformat()},
            after={"recovered_at": now.isoformat()},
        )
        hb.missed_at = None
    hb.last_seen_at = now
    hb.interval_seconds = interval_seconds
    hb.due_at = now + timedelta(seconds=interval_seconds)
    session.add(hb)
    session.flush()
    return hb
