"""What a duty officer works through: the open incidents in their scope, gravest first, each with the tier they
could acknowledge now. A fixed number of queries whatever the number of incidents (the board polls it)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case
from sqlmodel import Session, col, select

from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.escalation.grading import Severity
from app.incidents import events, lifecycle
from app.incidents.models import OPEN_STATUSES, Incident
from app.org import paths

_GRAVEST_FIRST = case({s.value: s.rank for s in Severity}, value=col(Incident.severity), else_=9)


@dataclass(frozen=True)
class Item:
    incident: Incident
    ack_tier: str | None  # the tier this viewer could sign (签收) for now, if any


def open_incidents(session: Session, *, clock: Clock, actor: Principal, limit: int) -> list[Item]:
    """Open incidents the actor may read, gravest first and then oldest first."""
    authorize(actor, "incidents:read")
    query = select(Incident).where(col(Incident.status).in_(OPEN_STATUSES))
    if actor.kind == "agency":
        query = query.where(events.agency_visibility(session, actor))
    elif actor.unit_path is not None:
        query = query.where(paths.sql_within(col(Incident.unit_path), actor.unit_path))
    rows = list(
        session.exec(query.order_by(_GRAVEST_FIRST, col(Incident.created_at), col(Incident.id)).limit(limit)).all()
    )
    tiers = lifecycle.ack_tiers(session, clock=clock, actor=actor, incidents=rows)
    return [Item(inc, tiers.get(inc.id or 0)) for inc in rows]
