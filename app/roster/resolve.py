"""Who is on duty: loading the roster rows for many units at once and applying the rules in timeline.py.

The escalation engine calls `resolve`/`resolve_many` at paging time, so these load everything for a set of
units in four queries (rotations, shifts, overrides, people) whatever the number of units.

Time zone: a rotation runs in its unit's `timezone`, else in the process-wide default zone. Domain code may not
read settings, and `resolve(session, *, unit, role, at)` is called from places that do not know them (the
escalation tick), so the default lives here and `create_app()` (and the CLI) set it from DUTYLINE_TIMEZONE.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, bindparam, literal, or_, type_coerce, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.org.models import Person, Unit
from app.roster.models import DUTY_ROLES, MAX_COVER, Override, Rotation, Shift
from app.roster.timeline import (
    Cover,
    RotationSpec,
    Segment,
    override_rank,
    pick,
    rotation_cover_at,
    rotation_covers,
    shift_rank,
    timeline,
)

# The zone of a rotation is applied in Python; in SQL its first handoff is only compared with this much slack.
ZONE_SLACK = timedelta(days=2)
# Above this many units the unit filter is applied in Python rather than as a long IN list.
IN_LIST_LIMIT = 64

_default_zone = ZoneInfo("Asia/Shanghai")

Key = tuple[int, str]


def set_default_timezone(name: str) -> None:
    """The zone for units without their own (DUTYLINE_TIMEZONE); called once at start-up."""
    global _default_zone
    _default_zone = ZoneInfo(name)


def default_zone() -> ZoneInfo:
    return _default_zone


def zone_of(unit: Unit) -> ZoneInfo:
    return ZoneInfo(unit.timezone) if unit.timezone else _default_zone


@dataclass(frozen=True)
class Gap:
    unit: Unit
    role: str
    start: datetime
    end: datetime


def _raw(column: Any) -> Any:
    """The column without SQLAlchemy's per-value result processing (see the _as_* parsers)."""
    return type_coerce(column, String)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _as_time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(value)


def _as_utc(value: Any) -> datetime:
    # SQLite hands back the stored text (naive UTC); PostgreSQL's driver an aware datetime.
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _as_list(value: Any) -> list[int]:
    return value if isinstance(value, list) else json.loads(value)


def _in_units(query: Any, column: Any, filtered: bool) -> Any:
    return query.where(col(column).in_(bindparam("unit_ids", expanding=True))) if filtered else query


# The two roster queries are built once (per shape) and run with bound values: they run at every page, and
# building and keying a statement of this size costs more than running it.
@functools.cache
def _rotations_query(filtered: bool) -> Any:
    # Typed overloads do not cover SQLModel attributes (typed as plain Python values) beyond a few columns.
    query = sa_select(  # type: ignore[call-overload]
        Rotation.id,
        Rotation.unit_id,
        Rotation.role,
        _raw(Rotation.participants),
        _raw(Rotation.start_date),
        _raw(Rotation.handoff_time),
        Rotation.shift_minutes,
        Rotation.cycle_minutes,
        _raw(Rotation.ends_at),
        _raw(Rotation.starts_at),
    ).where(
        col(Rotation.starts_at) <= bindparam("latest_start"),
        or_(col(Rotation.ends_at).is_(None), col(Rotation.ends_at) > bindparam("start")),
    )
    return _in_units(query, Rotation.unit_id, filtered)


@functools.cache
def _explicit_query(filtered: bool) -> Any:
    parts = []
    for model, source in ((Override, "override"), (Shift, "shift")):
        query = sa_select(  # type: ignore[call-overload]
            literal(source).label("source"),
            model.id,
            model.unit_id,
            model.role,
            model.person_id,
            _raw(model.starts_at),
            _raw(model.ends_at),
        ).where(
            col(model.starts_at) < bindparam("end"),
            col(model.starts_at) > bindparam("earliest_start"),
            col(model.ends_at) > bindparam("start"),
        )
        parts.append(_in_units(query, model.unit_id, filtered))
    return union_all(*parts)


def _unit_params(units: dict[int, Unit]) -> tuple[bool, dict[str, Any]]:
    """Whether to filter by unit in SQL (a short IN list) or in Python, and the bound list."""
    filtered = len(units) <= IN_LIST_LIMIT
    return filtered, ({"unit_ids": list(units)} if filtered else {})


def _rotation_specs(session: Session, units: dict[int, Unit], start: datetime, end: datetime) -> list[RotationSpec]:
    # Resolution runs at every page and for the whole board; SQLAlchemy's generic date, time, JSON and UTC
    # processing cost more than the query itself for hundreds of rows, so the values are parsed here directly.
    filtered, params = _unit_params(units)
    rows = session.execute(_rotations_query(filtered), {**params, "latest_start": end + ZONE_SLACK, "start": start})
    specs = []
    for rid, unit_id, role, participants, start_date, handoff, shift_min, cycle_min, ends_at, first in rows:
        unit = units.get(unit_id)
        if unit is None:
            continue
        specs.append(
            RotationSpec(
                id=rid,
                unit_id=unit_id,
                role=role,
                participants=tuple(_as_list(participants)),
                start_date=_as_date(start_date),
                handoff_time=_as_time(handoff),
                shift_minutes=shift_min,
                cycle_minutes=cycle_min,
                ends_at=_as_utc(ends_at) if ends_at is not None else None,
                zone=zone_of(unit),
                starts_at=_as_utc(first),
            )
        )
    return specs


def _explicit_covers(
    session: Session, units: dict[int, Unit], start: datetime, end: datetime
) -> list[tuple[Key, Cover]]:
    """Overrides and shifts overlapping [start, end) (for an instant: end = start + 1 µs), in one round trip."""
    filtered, params = _unit_params(units)
    rows = session.execute(
        _explicit_query(filtered), {**params, "end": end, "earliest_start": start - MAX_COVER, "start": start}
    )
    rank = {"override": override_rank, "shift": shift_rank}
    out: list[tuple[Key, Cover]] = []
    for source, rid, unit_id, role, person_id, s, e in rows:
        if unit_id in units:
            out.append(((unit_id, role), Cover(_as_utc(s), _as_utc(e), person_id, source, rid, rank[source](rid))))
    return out


def _units_by_id(units: Iterable[Unit]) -> dict[int, Unit]:
    return {u.id: u for u in units if u.id is not None}


def covers_at(session: Session, units: Sequence[Unit], at: datetime) -> dict[Key, list[Cover]]:
    """Every cover containing `at` for these units, by (unit id, role)."""
    by_id = _units_by_id(units)
    found: dict[Key, list[Cover]] = defaultdict(list)
    for key, cover in _explicit_covers(session, by_id, at, at + timedelta(microseconds=1)):
        if cover.start <= at < cover.end:
            found[key].append(cover)
    for spec in _rotation_specs(session, by_id, at, at):
        rc = rotation_cover_at(spec, at)
        if rc is not None:
            found[(spec.unit_id, spec.role)].append(rc)
    return found


def covers_between(session: Session, units: Sequence[Unit], start: datetime, end: datetime) -> dict[Key, list[Cover]]:
    """Every cover overlapping [start, end) for these units, by (unit id, role)."""
    by_id = _units_by_id(units)
    found: dict[Key, list[Cover]] = defaultdict(list)
    for key, cover in _explicit_covers(session, by_id, start, end):
        found[key].append(cover)
    for spec in _rotation_specs(session, by_id, start, end):
        found[(spec.unit_id, spec.role)].extend(rotation_covers(spec, start, end))
    return found


def active_ids(session: Session, person_ids: Iterable[int]) -> set[int]:
    ids = set(person_ids)
    if not ids:
        return set()
    rows = session.exec(select(Person.id).where(col(Person.id).in_(ids), col(Person.active).is_(True)))
    return {i for i in rows if i is not None}


_PEOPLE = select(Person).where(col(Person.id).in_(bindparam("ids", expanding=True)))


def resolve_many(session: Session, *, units: Sequence[Unit], at: datetime) -> dict[Key, Person | None]:
    """Who is on duty at `at` for each unit and both roles, keyed by (unit.id, role)."""
    found = covers_at(session, units, at)
    wanted = {c.person_id for covers in found.values() for c in covers}
    people: dict[int, Person] = {}
    if wanted:
        for person in session.exec(_PEOPLE, params={"ids": list(wanted)}):
            if person.active and person.id is not None:
                people[person.id] = person
    result: dict[Key, Person | None] = {}
    for unit in units:
        assert unit.id is not None
        for role in DUTY_ROLES:
            best = pick(found.get((unit.id, role), ()), at, people.__contains__)
            result[(unit.id, role)] = people[best.person_id] if best else None
    return result


@dataclass(frozen=True, slots=True)
class OnDuty:
    id: int
    name: str
    phone: str


def resolve_many_brief(session: Session, *, units: Sequence[Unit], at: datetime) -> dict[Key, OnDuty | None]:
    """resolve_many's answers as (id, name, phone) only: what the board shows, without loading whole Person rows."""
    found = covers_at(session, units, at)
    wanted = {c.person_id for covers in found.values() for c in covers}
    people: dict[int, OnDuty] = {}
    if wanted:
        query = select(Person.id, Person.name, Person.phone).where(
            col(Person.id).in_(wanted), col(Person.active).is_(True)
        )
        people = {pid: OnDuty(pid, name, phone) for pid, name, phone in session.exec(query) if pid is not None}
    result: dict[Key, OnDuty | None] = {}
    for unit in units:
        assert unit.id is not None
        for role in DUTY_ROLES:
            best = pick(found.get((unit.id, role), ()), at, people.__contains__)
            result[(unit.id, role)] = people[best.person_id] if best else None
    return result


def resolve(session: Session, *, unit: Unit, role: str, at: datetime) -> Person | None:
    """The one person on duty for this unit and role at `at` (override > explicit shift > rotation), or None."""
    assert unit.id is not None
    return resolve_many(session, units=[unit], at=at)[(unit.id, role)]


def timelines(
    session: Session, *, units: Sequence[Unit], start: datetime, end: datetime, roles: Sequence[str] = DUTY_ROLES
) -> dict[Key, list[Segment]]:
    """For each unit and role, [start, end) cut into segments with one answer each (None: nobody)."""
    found = covers_between(session, units, start, end)
    active = active_ids(session, {c.person_id for covers in found.values() for c in covers})
    out: dict[Key, list[Segment]] = {}
    for unit in units:
        assert unit.id is not None
        for role in roles:
            out[(unit.id, role)] = timeline(found.get((unit.id, role), []), start, end, active.__contains__)
    return out


def gaps(session: Session, *, units: Sequence[Unit], start: datetime, end: datetime) -> list[Gap]:
    """Every interval within [start, end) where a unit/role has nobody on duty, in unit order then time."""
    if start >= end:
        return []
    lines = timelines(session, units=units, start=start, end=end)
    out: list[Gap] = []
    for unit in units:
        assert unit.id is not None
        for role in DUTY_ROLES:
            out.extend(Gap(unit, role, s.start, s.end) for s in lines[(unit.id, role)] if s.person_id is None)
    return out
