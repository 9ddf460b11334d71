"""Gaps are found when they are made: a roster change (a person deactivated, an override cancelled, a rotation
ended) is measured against the gaps it opens within the alert horizon, answered with them, and the unit's admins
and its duty officer are told at once through the outbox (the daily gap alert comes too late for tonight).

One mechanism for every change: the gaps of the affected units are computed before and after the change (in the
same transaction, after a flush) and the difference is what the change opened. `preview_*` run the same change in
a savepoint that is rolled back, so the console can show what a change would open before it is confirmed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from sqlmodel import Session, col, select

from app.auth.principal import Principal
from app.clock import Clock
from app.notify import outbox
from app.org import people as people_service
from app.org.models import Person, Role, Unit
from app.org.schemas import PersonUpdate
from app.roster import resolve as roster_resolve
from app.roster import service as roster_service
from app.roster.models import Override, Rotation, Shift
from app.roster.resolve import Gap
from app.roster.schemas import GapPublic

# The same look-ahead as the daily gap alert (app.roster.jobs.gap_alerts).
HORIZON = timedelta(hours=72)
T = TypeVar("T")


def public(gaps: Sequence[Gap]) -> list[GapPublic]:
    return [
        GapPublic(unit_code=g.unit.code, unit_name=g.unit.name, role=g.role, start=g.start, end=g.end) for g in gaps
    ]


def _minus(after: Sequence[Gap], before: Sequence[Gap]) -> list[Gap]:
    """The parts of `after` not already in `before` (interval difference per unit and role)."""
    old: dict[tuple[int, str], list[tuple[datetime, datetime]]] = {}
    for g in before:
        old.setdefault((g.unit.id or 0, g.role), []).append((g.start, g.end))
    out: list[Gap] = []
    for g in after:
        pieces = [(g.start, g.end)]
        for s, e in old.get((g.unit.id or 0, g.role), []):
            pieces = [p for a, b in pieces for p in ((a, min(b, s)), (max(a, e), b)) if p[0] < p[1]]
        out.extend(Gap(g.unit, g.role, a, b) for a, b in pieces)
    return out


def opened_by(session: Session, *, clock: Clock, units: Sequence[Unit], change: Callable[[], T]) -> tuple[T, list[Gap]]:
    """Run `change` and return its result with the gaps it opened in these units within the horizon."""
    now = clock.now()
    if not units:
        return change(), []
    before = roster_resolve.gaps(session, units=units, start=now, end=now + HORIZON)
    result = change()
    session.flush()
    after = roster_resolve.gaps(session, units=units, start=now, end=now + HORIZON)
    return result, _minus(after, before)


def _preview(session: Session, *, clock: Clock, units: Sequence[Unit], change: Callable[[], object]) -> list[Gap]:
    savepoint = session.begin_nested()
    try:
        _, opened = opened_by(session, clock=clock, units=units, change=change)
    finally:
        savepoint.rollback()  # nothing of the change (nor its audit row) stays
    return opened


def units_rostering(session: Session, *, person_id: int, start: datetime, end: datetime) -> list[Unit]:
    """The units whose roster names this person anywhere in [start, end)."""
    ids: set[int] = set()
    for model in (Shift, Override):
        query = select(model.unit_id).where(
            model.person_id == person_id, col(model.ends_at) > start, col(model.starts_at) < end
        )
        ids.update(session.exec(query).all())
    rotations = session.exec(
        select(Rotation.unit_id, Rotation.participants).where(
            col(Rotation.starts_at) < end, (col(Rotation.ends_at).is_(None)) | (col(Rotation.ends_at) > start)
        )
    ).all()
    ids.update(unit_id for unit_id, participants in rotations if person_id in participants)
    if not ids:
        return []
    return list(session.exec(select(Unit).where(col(Unit.id).in_(ids)).order_by(col(Unit.path))).all())


def _admins_of(session: Session, unit: Unit) -> list[Person]:
    """The unit's own administrators; where it has none, those of the nearest unit above that has some."""
    codes = unit.path.split("/")
    chain = {u.code: u for u in session.exec(select(Unit).where(col(Unit.code).in_(codes))).all()}
    ids = [chain[c].id for c in codes if c in chain]
    people = session.exec(
        select(Person).where(col(Person.unit_id).in_(ids), col(Person.active).is_(True)).order_by(col(Person.id))
    ).all()
    for code in reversed(codes):
        holder = chain.get(code)
        admins = [
            p for p in people if holder and p.unit_id == holder.id and {Role.unit_admin, Role.admin} & set(p.roles)
        ]
        if admins:
            return admins
    return []


def alert(session: Session, *, clock: Clock, gaps: Sequence[Gap]) -> int:
    """Tell each gap's unit admins and its duty officer now (SMS through the outbox); how many pages."""
    if not gaps:
        return 0
    units = list({g.unit.id: g.unit for g in gaps}.values())
    on_duty = roster_resolve.resolve_many(session, units=units, at=clock.now())
    paged = 0
    for gap in gaps:
        unit = gap.unit
        recipients: list[Person] = []
        for person in [*_admins_of(session, unit), on_duty.get((unit.id or 0, "duty_officer"))]:
            if person is not None and person.id not in {r.id for r in recipients}:
                recipients.append(person)
        zone = roster_resolve.zone_of(unit)
        for person in recipients:
            row = outbox.enqueue(
                session,
                outbox.message(
                    clock=clock,
                    channel="sms",
                    to=person.phone,
                    template="roster_gap",
                    params={
                        "unit": unit.name,
                        "role": gap.role,
                        "start": gap.start.astimezone(zone).strftime("%m-%d %H:%M"),
                        "end": gap.end.astimezone(zone).strftime("%m-%d %H:%M"),
                    },
                    dedup_key=(
                        f"gap-made:{unit.code}:{gap.role}:{int(gap.start.timestamp())}:{int(gap.end.timestamp())}"
                        f":{person.id}"
                    ),
                    person_id=person.id,
                ),
            )
            paged += row is not None
    return paged


# ---- the changes that can open a gap ----


def _person_change(
    session: Session, *, clock: Clock, actor: Principal, person_id: int, data: PersonUpdate
) -> tuple[Callable[[], tuple[Person, Unit]], list[Unit]]:
    now = clock.now()
    # Only deactivation changes who resolves (a person's unit or roles do not); other edits open nothing.
    units = units_rostering(session, person_id=person_id, start=now, end=now + HORIZON) if data.active is False else []

    def change() -> tuple[Person, Unit]:
        return people_service.update(session, clock=clock, actor=actor, person_id=person_id, data=data)

    return change, units


def update_person(
    session: Session, *, clock: Clock, actor: Principal, person_id: int, data: PersonUpdate
) -> tuple[Person, Unit, list[Gap]]:
    """people.update, answered with the gaps it opened (deactivating someone on the roster) and alerted at once."""
    change, units = _person_change(session, clock=clock, actor=actor, person_id=person_id, data=data)
    (person, unit), opened = opened_by(session, clock=clock, units=units, change=change)
    alert(session, clock=clock, gaps=opened)
    return person, unit, opened


def preview_update_person(
    session: Session, *, clock: Clock, actor: Principal, person_id: int, data: PersonUpdate
) -> list[Gap]:
    """The gaps update_person would open, without writing anything (for a confirmation step)."""
    change, units = _person_change(session, clock=clock, actor=actor, person_id=person_id, data=data)
    return _preview(session, clock=clock, units=units, change=change)


def _unit_of(session: Session, model: type[Override] | type[Rotation] | type[Shift], row_id: int) -> list[Unit]:
    row: Override | Rotation | Shift | None
    if model is Override:
        row = session.get(Override, row_id)
    elif model is Rotation:
        row = session.get(Rotation, row_id)
    else:
        row = session.get(Shift, row_id)
    unit = session.get(Unit, row.unit_id) if row is not None else None
    return [unit] if unit is not None else []


def delete_shift(session: Session, *, clock: Clock, actor: Principal, shift_id: int) -> tuple[int, list[Gap]]:
    """roster_service.delete_shift, answered with the gaps it opened and alerted at once."""
    deleted, opened = opened_by(
        session,
        clock=clock,
        units=_unit_of(session, Shift, shift_id),
        change=lambda: roster_service.delete_shift(session, clock=clock, actor=actor, shift_id=shift_id),
    )
    alert(session, clock=clock, gaps=opened)
    return deleted, opened


def cancel_override(session: Session, *, clock: Clock, actor: Principal, override_id: int) -> tuple[int, list[Gap]]:
    """roster_service.cancel_override, answered with the gaps it opened and alerted at once."""
    units = _unit_of(session, Override, override_id)
    cancelled, opened = opened_by(
        session,
        clock=clock,
        units=units,
        change=lambda: roster_service.cancel_override(session, clock=clock, actor=actor, override_id=override_id),
    )
    alert(session, clock=clock, gaps=opened)
    return cancelled, opened


def preview_cancel_override(session: Session, *, clock: Clock, actor: Principal, override_id: int) -> list[Gap]:
    return _preview(
        session,
        clock=clock,
        units=_unit_of(session, Override, override_id),
        change=lambda: roster_service.cancel_override(session, clock=clock, actor=actor, override_id=override_id),
    )


def end_rotation(
    session: Session, *, clock: Clock, actor: Principal, rotation_id: int, ends_at: datetime | None
) -> tuple[Rotation, list[Gap]]:
    """roster_service.end_rotation, answered with the gaps it opened and alerted at once."""
    rotation, opened = opened_by(
        session,
        clock=clock,
        units=_unit_of(session, Rotation, rotation_id),
        change=lambda: roster_service.end_rotation(
            session, clock=clock, actor=actor, rotation_id=rotation_id, ends_at=ends_at
        ),
    )
    alert(session, clock=clock, gaps=opened)
    return rotation, opened


def preview_end_rotation(
    session: Session, *, clock: Clock, actor: Principal, rotation_id: int, ends_at: datetime | None
) -> list[Gap]:
    return _preview(
        session,
        clock=clock,
        units=_unit_of(session, Rotation, rotation_id),
        change=lambda: roster_service.end_rotation(
            session, clock=clock, actor=actor, rotation_id=rotation_id, ends_at=ends_at
        ),
    )
