"""Roster writes (rotations, shifts, overrides, swaps) and the on-duty views; resolution itself is in resolve.py.

Who may be rostered: an active person whose home unit is the rostered unit or inside its subtree (a street's duty
officer belongs to that street; a district's leader to the district or one of its streets). The actor must cover
the rostered unit, so they cover the person too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Any

from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.org import paths
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.org.phones import normalize_mobile
from app.roster.models import DUTY_ROLES, Override, Rotation, Shift

# The resolution API is re-exported here: callers use roster_service.resolve / resolve_many / gaps.
from app.roster.resolve import (
    Gap,
    OnDuty,
    default_zone,
    gaps,
    resolve,
    resolve_many,
    resolve_many_brief,
    set_default_timezone,
    timelines,
    zone_of,
)
from app.roster.schemas import (
    OverrideCreate,
    OverridePublic,
    PersonBrief,
    RotationCreate,
    RotationPublic,
    ShiftCreate,
    ShiftPublic,
    SwapCreate,
)
from app.roster.timeline import wall_to_utc
from app.schemas import MAX_ID

# --- people and scope -------------------------------------------------------------------------------------------


def brief(person: Person | OnDuty | None) -> PersonBrief | None:
    if person is None:
        return None
    assert person.id is not None
    return PersonBrief(id=person.id, name=person.name, phone=person.phone)


def find_person(session: Session, ref: int | str) -> Person | None:
    """A person by id, username or phone (E.164 or as people write it, e.g. 13912345678)."""
    if isinstance(ref, int):
        return session.get(Person, ref) if 1 <= ref <= MAX_ID else None
    text = ref.strip()
    person = session.exec(select(Person).where((Person.username == text) | (Person.phone == text))).first()
    if person is None and text and text.lstrip("+").isdigit():
        try:
            phone = normalize_mobile(text)
        except ValueError:
            phone = None
        if phone:
            person = session.exec(select(Person).where(Person.phone == phone)).first()
        if person is None and text.isdigit() and len(text) <= 9:
            person = session.get(Person, int(text))
    return person


def inside(unit: Unit, root: Unit) -> bool:
    return paths.within(unit.path, root.path)


def rosterable(session: Session, *, unit: Unit, ref: int | str, field: str) -> Person:
    """The person `ref` names, if they may be rostered at `unit`; else a 422 naming `field`."""
    person = find_person(session, ref)
    if person is None:
        raise Invalid.field(field, f"no person {ref!r}")
    if not person.active:
        raise Invalid.field(field, f"{person.name} (id {person.id}) is deactivated")
    home = session.get(Unit, person.unit_id)
    assert home is not None
    if not inside(home, unit):
        raise Invalid.field(
            field, f"{person.name} belongs to {home.code} {home.name}, outside {unit.code} {unit.name} and its subtree"
        )
    return person


def may_read(actor: Principal, unit: Unit) -> None:
    """Rosters of one's subtree, and of the units above it (a street must know who to call at its district)."""
    authorize(actor, "rosters:read")
    if actor.covers(unit) or (actor.unit_path is not None and paths.below(actor.unit_path, unit.path)):
        return
    raise Forbidden(f"unit {unit.code} ({unit.name}) is outside the scope of {actor.actor}")


def people_by_id(session: Session, ids: Iterable[int]) -> dict[int, Person]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(wanted))) if p.id is not None}


def _ref_label(person: Person) -> str:
    return f"{person.id}:{person.name}"


# --- rotations --------------------------------------------------------------------------------------------------


def rotation_public(rotation: Rotation, unit: Unit, people: dict[int, Person]) -> RotationPublic:
    assert rotation.id is not None
    return RotationPublic(
        id=rotation.id,
        unit_code=unit.code,
        role=rotation.role,
        name=rotation.name,
        participants=[b for b in (brief(people.get(i)) for i in rotation.participants) if b is not None],
        start_date=rotation.start_date,
        handoff_time=rotation.handoff_time.strftime("%H:%M"),
        shift_minutes=rotation.shift_minutes,
        cycle_minutes=rotation.cycle_minutes,
        timezone=zone_of(unit).key,
        starts_at=rotation.starts_at,
        ends_at=rotation.ends_at,
        created_at=rotation.created_at,
    )


def rotations_public(session: Session, rotations: Sequence[Rotation]) -> list[RotationPublic]:
    units = unit_service.codes_by_id(session, {r.unit_id for r in rotations})
    people = people_by_id(session, (i for r in rotations for i in r.participants))
    return [rotation_public(r, units[r.unit_id], people) for r in rotations]


def _rotation_snapshot(rotation: Rotation, unit: Unit) -> dict[str, Any]:
    return {
        "unit_code": unit.code,
        "role": rotation.role,
        "name": rotation.name,
        "participants": list(rotation.participants),
        "start_date": rotation.start_date.isoformat(),
        "handoff_time": rotation.handoff_time.strftime("%H:%M"),
        "shift_minutes": rotation.shift_minutes,
        "cycle_minutes": rotation.cycle_minutes,
        "ends_at": rotation.ends_at.isoformat() if rotation.ends_at else None,
    }


def _local_instant(day: date, at: time, unit: Unit) -> datetime:
    return wall_to_utc(datetime.combine(day, at), zone_of(unit))


def create_rotation(session: Session, *, clock: Clock, actor: Principal, data: RotationCreate) -> Rotation:
    """Add a rotation for a unit and role in the actor's scope."""
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    authorize(actor, "rosters:write", unit)
    ids: list[int] = []
    for i, ref in enumerate(data.participants):
        person = rosterable(session, unit=unit, ref=ref, field=f"participants.{i}")
        assert person.id is not None
        ids.append(person.id)
    assert unit.id is not None
    rotation = Rotation(
        unit_id=unit.id,
        role=data.role,
        name=data.name.strip(),
        participants=ids,
        start_date=data.start_date,
        handoff_time=data.handoff_time.replace(second=0, microsecond=0),
        shift_minutes=data.shift_minutes,
        cycle_minutes=data.cycle_minutes or data.shift_minutes,
        starts_at=_local_instant(data.start_date, data.handoff_time, unit),
        ends_at=_local_instant(data.end_date, data.handoff_time, unit) if data.end_date else None,
        created_at=clock.now(),
    )
    session.add(rotation)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="rotation.create",
        object_type="rotation",
        object_id=rotation.id,
        unit_path=unit.path,
        after=_rotation_snapshot(rotation, unit),
    )
    return rotation


def end_rotation(
    session: Session, *, clock: Clock, actor: Principal, rotation_id: int, ends_at: datetime | None
) -> Rotation:
    """Stop a rotation at `ends_at` (default: now). Rotations are ended, not deleted, so history still resolves."""
    rotation = session.get(Rotation, rotation_id)
    unit = session.get(Unit, rotation.unit_id) if rotation else None
    if rotation is None or unit is None or not actor.covers(unit):
        raise NotFound(f"no rotation with id {rotation_id}")
    authorize(actor, "rosters:write", unit)
    end = ends_at or clock.now()
    if end < rotation.starts_at:
        raise Invalid.field("ends_at", f"the rotation starts at {rotation.starts_at.isoformat()}")
    before = _rotation_snapshot(rotation, unit)
    rotation.ends_at = end
    session.add(rotation)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="rotation.end",
        object_type="rotation",
        object_id=rotation.id,
        unit_path=unit.path,
        before=before,
        after=_rotation_snapshot(rotation, unit),
    )
    return rotation


def list_rotations(
    session: Session, *, clock: Clock, actor: Principal, unit: Unit | None, include_ended: bool
) -> list[Rotation]:
    """Rotations of a unit's subtree (default: the actor's scope), in tree order."""
    root = unit.path if unit is not None else actor.unit_path
    if unit is not None:
        may_read(actor, unit)
    else:
        authorize(actor, "rosters:read")
    query = select(Rotation).join(Unit, col(Unit.id) == col(Rotation.unit_id))
    if root is not None:
        query = query.where(unit_service.in_subtree(root))
    if not include_ended:
        query = query.where((col(Rotation.ends_at).is_(None)) | (col(Rotation.ends_at) > clock.now()))
    return list(session.exec(query.order_by(col(Unit.path), col(Rotation.role), col(Rotation.id))))


# --- explicit shifts and overrides -------------------------------------------------------------------------------


def _cover_public(row: Shift | Override, unit: Unit, person: Person) -> dict[str, Any]:
    assert row.id is not None
    person_brief = brief(person)
    return {
        "id": row.id,
        "unit_code": unit.code,
        "role": row.role,
        "person": person_brief,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
    }


def shift_public(shift: Shift, unit: Unit, person: Person) -> ShiftPublic:
    return ShiftPublic(**_cover_public(shift, unit, person), source=shift.source)


def override_public(override: Override, unit: Unit, person: Person) -> OverridePublic:
    fields = _cover_public(override, unit, person)
    return OverridePublic(**fields, source="override", reason=override.reason, swap_group=override.swap_group)


def _snapshot(row: Shift | Override, unit: Unit, person: Person) -> dict[str, Any]:
    return {
        "unit_code": unit.code,
        "role": row.role,
        "person": _ref_label(person),
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
    }


def overlapping_shifts(session: Session, *, unit_id: int, role: str, start: datetime, end: datetime) -> list[Shift]:
    query = select(Shift).where(
        Shift.unit_id == unit_id, Shift.role == role, col(Shift.starts_at) < end, col(Shift.ends_at) > start
    )
    return list(session.exec(query.order_by(col(Shift.starts_at))))


def create_shift(session: Session, *, clock: Clock, actor: Principal, data: ShiftCreate) -> tuple[Shift, Unit, Person]:
    """Add one explicit shift; it may not overlap another explicit shift of the same unit and role."""
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    authorize(actor, "rosters:write", unit)
    person = rosterable(session, unit=unit, ref=data.person, field="person")
    assert unit.id is not None and person.id is not None
    clash = overlapping_shifts(session, unit_id=unit.id, role=data.role, start=data.starts_at, end=data.ends_at)
    if clash:
        c = clash[0]
        raise Conflict(
            f"shift {c.id} ({c.starts_at.isoformat()} – {c.ends_at.isoformat()}) already covers part of this time; "
            "use an override to replace someone, or re-import the table"
        )
    shift = Shift(
        unit_id=unit.id,
        role=data.role,
        person_id=person.id,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        source="api",
        created_at=clock.now(),
    )
    session.add(shift)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="shift.create",
        object_type="shift",
        object_id=shift.id,
        unit_path=unit.path,
        after=_snapshot(shift, unit, person),
    )
    return shift, unit, person


def _add_override(
    session: Session,
    *,
    clock: Clock,
    unit: Unit,
    role: str,
    person: Person,
    start: datetime,
    end: datetime,
    reason: str,
    swap_group: str | None,
) -> Override:
    assert unit.id is not None and person.id is not None
    override = Override(
        unit_id=unit.id,
        role=role,
        person_id=person.id,
        starts_at=start,
        ends_at=end,
        reason=reason.strip(),
        swap_group=swap_group,
        created_at=clock.now(),
    )
    session.add(override)
    session.flush()
    return override


def create_override(
    session: Session, *, clock: Clock, actor: Principal, data: OverrideCreate
) -> tuple[Override, Unit, Person]:
    """替班: a person covers [starts_at, ends_at) for a unit and role, above any shift or rotation."""
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    authorize(actor, "rosters:write", unit)
    person = rosterable(session, unit=unit, ref=data.person, field="person")
    override = _add_override(
        session,
        clock=clock,
        unit=unit,
        role=data.role,
        person=person,
        start=data.starts_at,
        end=data.ends_at,
        reason=data.reason,
        swap_group=None,
    )
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="override.create",
        object_type="override",
        object_id=override.id,
        unit_path=unit.path,
        after={**_snapshot(override, unit, person), "reason": override.reason},
    )
    return override, unit, person


def _on_duty_throughout(
    session: Session, *, unit: Unit, role: str, person: Person, start: datetime, end: datetime, field: str
) -> None:
    assert unit.id is not None
    segments = timelines(session, units=[unit], start=start, end=end, roles=[role])[(unit.id, role)]
    for s in segments:
        if s.person_id != person.id:
            raise Conflict(
                f"{person.name} is not on duty for {unit.code} {role} from {s.start.isoformat()} to "
                f"{s.end.isoformat()} ({field}); a swap exchanges shifts the two people actually hold"
            )


def swap(
    session: Session, *, clock: Clock, actor: Principal, data: SwapCreate
) -> tuple[str, list[tuple[Override, Unit, Person]]]:
    """换班 as one act: two overrides (second covers first's interval, first covers second's), sharing a group."""
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    authorize(actor, "rosters:write", unit)
    first = rosterable(session, unit=unit, ref=data.first.person, field="first.person")
    second = rosterable(session, unit=unit, ref=data.second.person, field="second.person")
    if first.id == second.id:
        raise Invalid.field("second.person", "a swap needs two different people")
    if data.first.starts_at < data.second.ends_at and data.second.starts_at < data.first.ends_at:
        raise Invalid.field("second.starts_at", "the two intervals overlap")
    _on_duty_throughout(
        session,
        unit=unit,
        role=data.role,
        person=first,
        start=data.first.starts_at,
        end=data.first.ends_at,
        field="first",
    )
    _on_duty_throughout(
        session,
        unit=unit,
        role=data.role,
        person=second,
        start=data.second.starts_at,
        end=data.second.ends_at,
        field="second",
    )
    group = uuid.uuid4().hex[:16]
    reason = data.reason or f"换班 {first.name} ⇄ {second.name}"
    a = _add_override(
        session,
        clock=clock,
        unit=unit,
        role=data.role,
        person=second,
        start=data.first.starts_at,
        end=data.first.ends_at,
        reason=reason,
        swap_group=group,
    )
    b = _add_override(
        session,
        clock=clock,
        unit=unit,
        role=data.role,
        person=first,
        start=data.second.starts_at,
        end=data.second.ends_at,
        reason=reason,
        swap_group=group,
    )
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="override.swap",
        object_type="override",
        object_id=group,
        unit_path=unit.path,
        after={
            "overrides": [
                {"id": a.id, **_snapshot(a, unit, second)},
                {"id": b.id, **_snapshot(b, unit, first)},
            ],
            "reason": reason,
        },
    )
    return group, [(a, unit, second), (b, unit, first)]


def cancel_override(session: Session, *, clock: Clock, actor: Principal, override_id: int) -> int:
    """Remove an override (both halves, for a swap); returns how many rows went."""
    override = session.get(Override, override_id)
    unit = session.get(Unit, override.unit_id) if override else None
    if override is None or unit is None or not actor.covers(unit):
        raise NotFound(f"no override with id {override_id}")
    authorize(actor, "rosters:write", unit)
    rows = [override]
    if override.swap_group:
        rows = list(session.exec(select(Override).where(Override.swap_group == override.swap_group)))
    people = people_by_id(session, (r.person_id for r in rows))
    before = {"overrides": [{"id": r.id, **_snapshot(r, unit, people[r.person_id])} for r in rows]}
    for r in rows:
        session.delete(r)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="override.cancel",
        object_type="override",
        object_id=override.swap_group or override_id,
        unit_path=unit.path,
        before=before,
    )
    return len(rows)


def delete_shift(session: Session, *, clock: Clock, actor: Principal, shift_id: int) -> int:
    """Remove an explicit shift (a rotation's days are ended with the rotation); returns how many rows went."""
    shift = session.get(Shift, shift_id)
    unit = session.get(Unit, shift.unit_id) if shift else None
    if shift is None or unit is None or not actor.covers(unit):
        raise NotFound(f"no shift with id {shift_id}")
    authorize(actor, "rosters:write", unit)
    person = people_by_id(session, [shift.person_id])[shift.person_id]
    before = {"id": shift.id, **_snapshot(shift, unit, person)}
    session.delete(shift)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="shift.delete",
        object_type="shift",
        object_id=shift_id,
        unit_path=unit.path,
        before=before,
    )
    return 1


__all__ = [
    "DUTY_ROLES",
    "Gap",
    "create_override",
    "create_rotation",
    "create_shift",
    "default_zone",
    "delete_shift",
    "end_rotation",
    "gaps",
    "resolve",
    "resolve_many",
    "resolve_many_brief",
    "set_default_timezone",
    "swap",
    "timelines",
]
