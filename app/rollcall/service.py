"""Roll-call (查岗点名): call the roll of the posts below a unit, record who answered, and read the results.

Starting one writes the roll-call, one entry per post (unit × duty role) with the person on duty at that moment
(or `vacant`), the first pages and the audit entry in the caller's transaction. What happens to a post that does not
answer in time is the chase's business (app.rollcall.chase, on the one step machine of app.escalation).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, func, select

from app import audit, labels
from app.auth import service as auth_service
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Forbidden, NotFound
from app.notices import targets
from app.org import paths
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.rollcall import chase as rollcall_chase
from app.rollcall.models import EntryState, RollCall, RollCallEntry
from app.rollcall.schemas import RollCallCreate
from app.roster import service as roster_service

CODE_PREFIX = "R"
_CODE_TRIES = 8


def _calling_unit(session: Session, actor: Principal, unit_code: str | None) -> Unit:
    if unit_code is not None:
        return unit_service.get(session, unit_code, field="unit_code")
    if actor.unit_code is None:
        raise Forbidden("give unit_code: this principal has no unit of its own")
    return unit_service.get(session, actor.unit_code, field="unit_code")


def _free_code(session: Session) -> str:
    for _ in range(_CODE_TRIES):
        code = targets.new_code(CODE_PREFIX)
        if session.exec(select(RollCall.id).where(RollCall.code == code)).first() is None:
            return code
    raise RuntimeError("no free roll-call code after several tries")  # 31**4 codes: practically unreachable


def start(
    session: Session, *, clock: Clock, actor: Principal, data: RollCallCreate, schedule_id: int | None = None
) -> RollCall:
    """Call the roll of every post of the units in scope; each holder is paged to answer within the window."""
    caller = _calling_unit(session, actor, data.unit_code)
    authorize(actor, "rollcalls:write", caller)
    units = targets.resolve(session, actor=actor, root=caller, scope=data.scope, field="scope")
    now = clock.now()
    roles = list(dict.fromkeys(str(r) for r in data.roles))
    posts = roster_service.resolve_many(session, units=units, at=now)
    assert caller.id is not None
    rc = RollCall(
        code=_free_code(session),
        unit_id=caller.id,
        unit_path=caller.path,
        scope=data.scope,
        roles=roles,
        answer_within_seconds=data.answer_within_seconds,
        voice_for_leaders=data.voice_for_leaders,
        note=data.note,
        started_at=now,
        due_at=now + timedelta(seconds=data.answer_within_seconds),
        started_by=actor.actor,
        schedule_id=schedule_id,
    )
    session.add(rc)
    session.flush()
    assert rc.id is not None
    rows: list[dict[str, Any]] = []
    for unit in units:
        for role in roles:
            person = posts.get((unit.id or 0, role))
            rows.append(
                {
                    "roll_call_id": rc.id,
                    "unit_id": unit.id,
                    "role": role,
                    "person_id": person.id if person else None,
                    "person_name": person.name if person else None,
                    "state": EntryState.pending.value if person else EntryState.vacant.value,
                    "answered_at": None,
                    "channel": None,
                }
            )
    table = RollCallEntry.__table__  # type: ignore[attr-defined]
    # The driver's executemany (a multi-row INSERT … RETURNING of 720 rows is slow to even parse), then the ids.
    session.execute(insert(table), rows)
    ids = session.execute(select(table.c.id, table.c.unit_id, table.c.role).where(table.c.roll_call_id == rc.id)).all()
    by_unit = {u.id: u for u in units}
    rollcall_chase.begin(
        session,
        clock=clock,
        rc=rc,
        caller=caller,
        entries=[(entry_id, by_unit[unit_id], role, posts.get((unit_id, role))) for entry_id, unit_id, role in ids],
    )
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="rollcall.start",
        object_type="roll_call",
        object_id=rc.id,
        unit_path=caller.path,
        after={
            "code": rc.code,
            "scope": rc.scope,
            "roles": roles,
            "posts": len(rows),
            "vacant": sum(1 for r in rows if r["person_id"] is None),
            "answer_within_seconds": rc.answer_within_seconds,
            "schedule_id": schedule_id,
        },
    )
    session.flush()
    return rc


def may_read(actor: Principal, rc: RollCall) -> bool:
    """The calling unit's subtree reads a roll-call; so does a unit that was called (it sees the whole roll)."""
    if not actor.can("rollcalls:read"):
        return False
    if actor.unit_path is None or paths.within(rc.unit_path, actor.unit_path):
        return True
    return paths.below(actor.unit_path, rc.unit_path)


def get(session: Session, *, actor: Principal, roll_call_id: int) -> RollCall:
    rc = session.get(RollCall, roll_call_id)
    if rc is None or not may_read(actor, rc):
        raise NotFound(f"no roll-call with id {roll_call_id}")
    return rc


def entries(session: Session, rc: RollCall) -> list[RollCallEntry]:
    query = select(RollCallEntry).where(RollCallEntry.roll_call_id == rc.id).order_by(col(RollCallEntry.id))
    return list(session.exec(query).all())


def summaries(session: Session, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Counts by state for each roll-call, in one query."""
    out: dict[int, dict[str, int]] = {i: {s.value: 0 for s in EntryState} for i in ids}
    if not ids:
        return out
    query = (
        select(RollCallEntry.roll_call_id, RollCallEntry.state, func.count())
        .where(col(RollCallEntry.roll_call_id).in_(list(ids)))
        .group_by(col(RollCallEntry.roll_call_id), col(RollCallEntry.state))
    )
    for rc_id, state, n in session.exec(query).all():
        out[rc_id][state] = n
    return out


def listing(
    session: Session,
    *,
    actor: Principal,
    unit: Unit | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[RollCall], int]:
    """Roll-calls called by a unit of the actor's subtree (or by `unit`), newest first."""
    authorize(actor, "rollcalls:read", unit)
    query = select(RollCall)
    root = unit.path if unit is not None else actor.unit_path
    if unit is not None:
        query = query.where(RollCall.unit_id == unit.id)
    elif root is not None:
        query = query.where(paths.sql_within(col(RollCall.unit_path), root))
    if since is not None:
        query = query.where(col(RollCall.started_at) >= since)
    if until is not None:
        query = query.where(col(RollCall.started_at) < until)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(RollCall.started_at).desc(), col(RollCall.id).desc()).offset(offset).limit(limit)
    )
    return list(rows.all()), total


def _holds(session: Session, *, clock: Clock, entry: RollCallEntry, person: Person) -> bool:
    """The person on duty at the post when the roll was called, or the one holding it now (after a handover)."""
    if entry.person_id == person.id:
        return True
    unit = session.get(Unit, entry.unit_id)
    if unit is None:
        return False
    now_holder = roster_service.resolve(session, unit=unit, role=entry.role, at=clock.now())
    return now_holder is not None and now_holder.id == person.id


def record_answer(
    session: Session,
    *,
    clock: Clock,
    rc: RollCall,
    entry: RollCallEntry,
    person: Person,
    via: str,
    locked: bool = False,
) -> RollCallEntry:
    """Mark an entry answered (idempotent: a second answer changes nothing). A late answer after `missed` is kept
    as missed, with the time it came. `locked`: the caller read the entry FOR UPDATE in this transaction."""
    if not locked:
        entry = session.exec(select(RollCallEntry).where(RollCallEntry.id == entry.id).with_for_update()).one()
    if entry.answered_at is not None or entry.state == EntryState.vacant:
        return entry
    now = clock.now()
    entry.answered_at = now
    entry.channel = via
    if entry.state == EntryState.pending:
        entry.state = EntryState.answered
    session.add(entry)
    unit = session.get(Unit, entry.unit_id)
    audit.record(
        session,
        clock=clock,
        actor=auth_service.principal_of(person, unit)
        if unit
        else auth_service.person_principal(session, person.id or 0),
        action="rollcall.answer",
        object_type="roll_call",
        object_id=rc.id,
        unit_path=unit.path if unit else rc.unit_path,
        after={"entry_id": entry.id, "role": entry.role, "state": entry.state, "via": via},
    )
    rollcall_chase.answered(session, clock=clock, entry=entry, by=f"person:{person.id}", via=via)
    session.flush()
    return entry


def answer(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    roll_call_id: int,
    unit_code: str | None = None,
    role: str | None = None,
    via: str = "api",
) -> list[RollCallEntry]:
    """The person on duty at a post answers the roll (console button, API); every post they hold unless named."""
    rc = get(session, actor=actor, roll_call_id=roll_call_id)
    if actor.kind != "person" or actor.id is None:
        raise Forbidden("only the person on duty at a post answers a roll-call")
    person = session.get(Person, actor.id)
    assert person is not None
    candidates = entries(session, rc)
    if unit_code is not None:
        unit = unit_service.get(session, unit_code, field="unit_code")
        candidates = [e for e in candidates if e.unit_id == unit.id]
    if role is not None:
        candidates = [e for e in candidates if e.role == role]
    mine = [
        e for e in candidates if e.state != EntryState.vacant and _holds(session, clock=clock, entry=e, person=person)
    ]
    if not mine:
        raise Forbidden(f"{person.name} is not on duty at a post of roll-call {rc.code}")
    return [record_answer(session, clock=clock, rc=rc, entry=e, person=person, via=via) for e in mine]


def role_label(role: str) -> str:
    return labels.DUTY_ROLES.get(role, role)
