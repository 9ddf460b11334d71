"""Shifts in practice: check-in at the start of a shift, handover (交接班) at its end, and the shift log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit, labels
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Conflict, Forbidden, Invalid
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster import service as roster_service
from app.roster.models import DUTY_ROLES, CheckIn, HandoverNote
from app.roster.schemas import (
    CheckInPublic,
    CheckInRequest,
    HandoverPublic,
    HandoverRequest,
    PersonBrief,
    ShiftLogEntry,
)
from app.roster.timeline import Segment, person_segments

# The outgoing person may still write the handover this long after their shift ended.
HANDOVER_GRACE = timedelta(hours=2)
MAX_LOG_WINDOW = timedelta(days=92)


def _caller(session: Session, actor: Principal) -> tuple[Person, Unit]:
    if actor.kind != "person" or actor.id is None:
        raise Forbidden("only a person on duty can do this")
    authorize(actor, "shifts:write")
    person = session.get(Person, actor.id)
    unit = session.get(Unit, person.unit_id) if person else None
    assert person is not None and unit is not None
    return person, unit


def _candidates(
    session: Session, *, home: Unit, unit_code: str | None, role: str | None
) -> tuple[list[Unit], Sequence[str]]:
    """Where the caller can be rostered: their home unit and the units above it (or the one they name)."""
    if unit_code is not None:
        unit = unit_service.get(session, unit_code, field="unit_code")
        if not roster_service.inside(home, unit):
            raise Invalid.field("unit_code", f"you cannot be on duty at {unit.code} {unit.name}")
        units = [unit]
    else:
        units = list(reversed(unit_service.chain(session, home)))
    return units, [role] if role else DUTY_ROLES


def _own_segments(
    session: Session, *, person: Person, units: list[Unit], roles: Sequence[str], start: datetime, end: datetime
) -> list[tuple[Unit, str, Segment]]:
    """The caller's duty segments overlapping [start, end), consecutive pieces joined, for each unit and role."""
    around = timedelta(days=8)  # so a segment is seen whole: rotations of up to a week, then some
    lines = roster_service.timelines(session, units=units, start=start - around, end=end + around, roles=roles)
    out = []
    for unit in units:
        assert unit.id is not None
        for role in roles:
            for s in person_segments(lines[(unit.id, role)]):
                if s.person_id == person.id and s.start < end and s.end > start:
                    out.append((unit, role, s))
    return out


def _not_on_duty(
    session: Session, *, person: Person, units: list[Unit], roles: Sequence[str], at: datetime, handover: bool = False
) -> Conflict:
    found = roster_service.resolve_many(session, units=units, at=at)
    who, who_zh = [], []
    for unit in units[:3]:
        assert unit.id is not None
        for role in roles:
            p = found.get((unit.id, role))
            who.append(f"{unit.name} {labels.DUTY_ROLES.get(role, role)}: {p.name if p else 'nobody'}")
            who_zh.append(f"{unit.name}{labels.DUTY_ROLES.get(role, role)} {p.name if p else '空岗'}")
    message = f"{person.name} is not on duty now ({at.isoformat()}); on duty: " + "; ".join(who)
    zh = f"{person.name}当前不在班。当前在岗：" + "；".join(who_zh)
    if handover:
        message += "; a handover is written by the person whose shift is ending"
        zh += "。交接班记录由即将下班的值班人员填写"
    return Conflict(message, zh=zh)


def check_in(
    session: Session, *, clock: Clock, actor: Principal, data: CheckInRequest
) -> tuple[CheckIn, Unit, Person, bool]:
    """The caller reports for the shift they hold now; a second check-in for the same shift returns the first."""
    person, home = _caller(session, actor)
    units, roles = _candidates(session, home=home, unit_code=data.unit_code, role=data.role)
    now = clock.now()
    instant = now + timedelta(microseconds=1)
    mine = _own_segments(session, person=person, units=units, roles=roles, start=now, end=instant)
    if not mine:
        raise _not_on_duty(session, person=person, units=units, roles=roles, at=now)
    unit, role, segment = mine[0]  # the unit nearest their home first
    assert unit.id is not None and person.id is not None
    existing = session.exec(
        select(CheckIn).where(
            CheckIn.unit_id == unit.id,
            CheckIn.role == role,
            CheckIn.person_id == person.id,
            CheckIn.shift_starts_at == segment.start,
        )
    ).first()
    if existing is not None:
        return existing, unit, person, False
    row = CheckIn(
        unit_id=unit.id,
        role=role,
        person_id=person.id,
        at=now,
        shift_starts_at=segment.start,
        shift_ends_at=segment.end,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # the same person checking in twice at the same moment
        raise Conflict("already checked in for this shift") from exc
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="shift.check_in",
        object_type="check_in",
        object_id=row.id,
        unit_path=unit.path,
        after={"unit_code": unit.code, "role": role, "shift_starts_at": segment.start.isoformat()},
    )
    return row, unit, person, True


def check_in_public(row: CheckIn, unit: Unit, person: Person) -> CheckInPublic:
    assert row.id is not None
    b = roster_service.brief(person)
    assert b is not None
    return CheckInPublic(
        id=row.id,
        unit_code=unit.code,
        role=row.role,
        person=b,
        at=row.at,
        shift_starts_at=row.shift_starts_at,
        shift_ends_at=row.shift_ends_at,
        late_minutes=max(0, int((row.at - row.shift_starts_at).total_seconds() // 60)),
    )


def current_check_ins(
    session: Session, *, actor: Principal, unit_codes: Sequence[str], at: datetime
) -> dict[tuple[str, str, int], datetime]:
    """(unit code, role, person id) → check-in time, for shifts covering `at`, in units the actor may read."""
    authorize(actor, "rosters:read")
    units = {u.id: u for u in session.exec(select(Unit).where(col(Unit.code).in_(set(unit_codes))))}
    readable = {i: u for i, u in units.items() if _may_read(actor, u)}
    if not readable:
        return {}
    rows = session.exec(
        select(CheckIn).where(
            col(CheckIn.unit_id).in_(readable), col(CheckIn.shift_starts_at) <= at, col(CheckIn.shift_ends_at) > at
        )
    ).all()
    return {(readable[r.unit_id].code, r.role, r.person_id): r.at for r in rows}


def _may_read(actor: Principal, unit: Unit) -> bool:
    try:
        roster_service.may_read(actor, unit)
    except Forbidden:
        return False
    return True


def handover(session: Session, *, clock: Clock, actor: Principal, data: HandoverRequest) -> HandoverPublic:
    """The outgoing person's notes and open items for the next shift (during their shift or just after it)."""
    person, home = _caller(session, actor)
    units, roles = _candidates(session, home=home, unit_code=data.unit_code, role=data.role)
    now = clock.now()
    mine = _own_segments(session, person=person, units=units, roles=roles, start=now - HANDOVER_GRACE, end=now)
    mine = [m for m in mine if m[2].start <= now]
    if not mine:
        raise _not_on_duty(session, person=person, units=units, roles=roles, at=now, handover=True)
    unit, role, segment = max(mine, key=lambda m: m[2].end)
    if data.incoming is not None:
        incoming = roster_service.find_person(session, data.incoming)
        if incoming is None or not incoming.active:
            raise Invalid.field("incoming", f"no active person {data.incoming!r}")
    else:
        incoming = roster_service.resolve(session, unit=unit, role=role, at=segment.end)
    if incoming is not None and incoming.id == person.id:
        raise Invalid.field("incoming", "you cannot hand over to yourself")
    assert unit.id is not None and person.id is not None
    note = HandoverNote(
        unit_id=unit.id,
        role=role,
        from_person_id=person.id,
        to_person_id=incoming.id if incoming else None,
        at=now,
        notes=data.notes.strip(),
        open_items=[i.strip() for i in data.open_items],
        shift_starts_at=segment.start,
        shift_ends_at=segment.end,
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="shift.handover",
        object_type="handover_note",
        object_id=note.id,
        unit_path=unit.path,
        after={
            "unit_code": unit.code,
            "role": role,
            "incoming": incoming.id if incoming else None,
            "open_items": len(note.open_items),
        },
    )
    outgoing = roster_service.brief(person)
    assert note.id is not None and outgoing is not None
    return HandoverPublic(
        id=note.id,
        unit_code=unit.code,
        role=role,
        outgoing=outgoing,
        incoming=roster_service.brief(incoming),
        at=note.at,
        notes=note.notes,
        open_items=note.open_items,
        shift_starts_at=note.shift_starts_at,
        shift_ends_at=note.shift_ends_at,
    )


def shift_log(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> list[ShiftLogEntry]:
    """Check-ins and handovers in [start, end) for a unit and its subtree, oldest first."""
    unit = unit_service.get(session, unit_code, field="unit")
    roster_service.may_read(actor, unit)
    if end <= start:
        raise Invalid.field("to", "must be after from")
    if end - start > MAX_LOG_WINDOW:
        raise Invalid.field("to", "the window may be at most 92 days")
    units = {u.id: u for u in session.exec(select(Unit).where(unit_service.in_subtree(unit.path)))}
    checkins = session.exec(
        select(CheckIn).where(col(CheckIn.unit_id).in_(units), col(CheckIn.at) >= start, col(CheckIn.at) < end)
    ).all()
    notes = session.exec(
        select(HandoverNote).where(
            col(HandoverNote.unit_id).in_(units), col(HandoverNote.at) >= start, col(HandoverNote.at) < end
        )
    ).all()
    people = {
        p.id: p
        for p in session.exec(
            select(Person).where(
                col(Person.id).in_(
                    {c.person_id for c in checkins}
                    | {n.from_person_id for n in notes}
                    | {n.to_person_id for n in notes if n.to_person_id}
                )
            )
        )
    }

    def b(pid: int) -> PersonBrief:
        out = roster_service.brief(people[pid])
        assert out is not None
        return out

    entries = [
        ShiftLogEntry(
            kind="check_in",
            at=c.at,
            unit_code=units[c.unit_id].code,
            unit_name=units[c.unit_id].name,
            role=c.role,
            person=b(c.person_id),
        )
        for c in checkins
    ] + [
        ShiftLogEntry(
            kind="handover",
            at=n.at,
            unit_code=units[n.unit_id].code,
            unit_name=units[n.unit_id].name,
            role=n.role,
            person=b(n.from_person_id),
            incoming=b(n.to_person_id) if n.to_person_id else None,
            notes=n.notes,
            open_items=n.open_items,
        )
        for n in notes
    ]
    return sorted(entries, key=lambda e: (e.at, e.unit_code, e.kind))


__all__ = ["check_in", "check_in_public", "current_check_ins", "handover", "shift_log"]
