"""The on-duty views: who is on duty along a unit's chain, the board, gaps, one unit's month, its overrides."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.auth.principal import Principal, authorize
from app.errors import Invalid
from app.org import units as unit_service
from app.org.models import Unit
from app.roster.models import DUTY_ROLES, Override
from app.roster.resolve import gaps, resolve_many_brief, timelines
from app.roster.schemas import GapPublic, OnCallEntry, OverridePublic, PersonBrief
from app.roster.service import brief, may_read, override_public, people_by_id
from app.roster.timeline import Segment, person_segments

MAX_WINDOW = timedelta(days=92)


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Invalid.field("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise Invalid.field("to", "the window may be at most 92 days")


def _entries(session: Session, units: Sequence[Unit], at: datetime) -> list[OnCallEntry]:
    found = resolve_many_brief(session, units=units, at=at)
    out = []
    for u in units:
        assert u.id is not None
        out.append(
            OnCallEntry(
                tier=u.tier,
                unit_code=u.code,
                unit_name=u.name,
                duty_officer=brief(found[(u.id, "duty_officer")]),
                leader=brief(found[(u.id, "leader")]),
            )
        )
    return out


def oncall_chain(session: Session, *, actor: Principal, unit_code: str, at: datetime) -> list[OnCallEntry]:
    """Who is on duty at `at` from this unit up to the city (the unit first)."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    chain = list(reversed(unit_service.chain(session, unit)))
    return _entries(session, chain, at)


def board(session: Session, *, actor: Principal, at: datetime) -> list[OnCallEntry]:
    """Who is on duty at `at` for every unit the actor may see (the whole tree for city principals), tree order."""
    authorize(actor, "rosters:read")
    query = select(Unit)
    if actor.unit_path is not None and "/" in actor.unit_path:
        above = actor.unit_path.split("/")[:-1]
        query = query.where(unit_service.in_subtree(actor.unit_path) | col(Unit.code).in_(above))
    units = list(session.exec(query.order_by(col(Unit.path))))
    return _entries(session, units, at)


def gap_report(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> list[GapPublic]:
    """Every interval in [start, end) where a unit of this subtree has nobody in a duty role."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    _check_window(start, end)
    units = list(session.exec(select(Unit).where(unit_service.in_subtree(unit.path)).order_by(col(Unit.path))))
    return [
        GapPublic(unit_code=g.unit.code, unit_name=g.unit.name, role=g.role, start=g.start, end=g.end)
        for g in gaps(session, units=units, start=start, end=end)
    ]


def unit_timelines(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> tuple[Unit, dict[str, list[Segment]], dict[int, PersonBrief]]:
    """One unit's duty over [start, end) per role (gaps are segments without a person), and the people named."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    _check_window(start, end)
    assert unit.id is not None
    lines = timelines(session, units=[unit], start=start, end=end)
    by_role = {role: person_segments(lines[(unit.id, role)]) for role in DUTY_ROLES}
    ids = {s.person_id for segs in by_role.values() for s in segs if s.person_id is not None}
    people = {i: b for i, p in people_by_id(session, ids).items() if (b := brief(p)) is not None}
    return unit, by_role, people


def overrides_between(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> list[OverridePublic]:
    """The overrides of one unit that overlap [start, end), oldest first."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    rows = session.exec(
        select(Override)
        .where(Override.unit_id == unit.id, col(Override.starts_at) < end, col(Override.ends_at) > start)
        .order_by(col(Override.starts_at), col(Override.id))
    ).all()
    people = people_by_id(session, {r.person_id for r in rows})
    return [override_public(r, unit, people[r.person_id]) for r in rows]
