"""Roster alerts through the notification pipeline (scheduled; APScheduler only triggers them).

- Gaps: every unit/role with nobody on duty in the next 72 h is reported to the unit's leader and the parent
  unit's duty officer, at most once a day per gap and person.
- Missed check-ins: a duty officer who has not checked in `grace` after their shift started pages the unit's
  leader, once per shift. Only shifts that passed the grace recently are looked at, so a restart (or a new
  installation) does not page for shifts long under way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.clock import Clock
from app.notify import outbox
from app.org.models import Person, Unit
from app.roster import resolve as roster_resolve
from app.roster import service as roster_service
from app.roster.models import CheckIn
from app.roster.timeline import Segment, person_segments

DUTY_OFFICER, LEADER = "duty_officer", "leader"
# A check-in this long before the shift starts still counts for it.
EARLY_CHECK_IN = timedelta(hours=1)


@dataclass(frozen=True)
class AlertResult:
    found: int
    paged: int


def _local(at: datetime, unit: Unit) -> str:
    return at.astimezone(roster_resolve.zone_of(unit)).strftime("%m-%d %H:%M")


def _all_units(session: Session) -> list[Unit]:
    return list(session.exec(select(Unit).order_by(col(Unit.path))).all())


def gap_alerts(session: Session, *, clock: Clock, horizon: timedelta = timedelta(hours=72)) -> AlertResult:
    """Page about every roster gap in the coming `horizon`."""
    now = clock.now()
    units = _all_units(session)
    found = roster_service.gaps(session, units=units, start=now, end=now + horizon)
    if not found:
        return AlertResult(0, 0)
    by_id = {u.id: u for u in units}
    on_duty = roster_service.resolve_many(session, units=units, at=now)
    paged = 0
    for gap in found:
        unit = gap.unit
        parent = by_id.get(unit.parent_id) if unit.parent_id else None
        recipients: list[Person] = []
        for person in (
            on_duty.get((unit.id or 0, LEADER)),
            on_duty.get((parent.id or 0, DUTY_OFFICER)) if parent else None,
        ):
            if person is not None and person not in recipients:
                recipients.append(person)
        day = now.astimezone(roster_resolve.zone_of(unit)).date().isoformat()
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
                        "start": _local(gap.start, unit),
                        "end": _local(gap.end, unit),
                    },
                    dedup_key=f"gap:{unit.code}:{gap.role}:{int(gap.start.timestamp())}:{day}:{person.id}",
                    person_id=person.id,
                ),
            )
            paged += row is not None
    return AlertResult(len(found), paged)


def missed_check_ins(
    session: Session,
    *,
    clock: Clock,
    grace: timedelta = timedelta(minutes=15),
    lookback: timedelta = timedelta(hours=2),
) -> AlertResult:
    """Page the leader of every unit whose duty officer has not checked in `grace` after their shift began."""
    now = clock.now()
    window_start = now - grace - lookback
    units = _all_units(session)
    lines = roster_service.timelines(session, units=units, start=window_start, end=now, roles=[DUTY_OFFICER])
    late: list[tuple[Unit, Segment]] = []
    for unit in units:
        for seg in person_segments(lines[(unit.id or 0, DUTY_OFFICER)]):
            # A segment starting at the window's edge began earlier: it was judged by an earlier run.
            if seg.person_id is not None and window_start < seg.start <= now - grace:
                late.append((unit, seg))
    if not late:
        return AlertResult(0, 0)
    checked = {
        (c.unit_id, c.person_id, c.at)
        for c in session.exec(
            select(CheckIn).where(CheckIn.role == DUTY_OFFICER, col(CheckIn.at) >= window_start - EARLY_CHECK_IN)
        ).all()
    }
    missing = [
        (unit, seg)
        for unit, seg in late
        if not any(u == unit.id and p == seg.person_id and at >= seg.start - EARLY_CHECK_IN for u, p, at in checked)
    ]
    if not missing:
        return AlertResult(0, 0)
    on_duty = roster_service.resolve_many(session, units=[u for u, _ in missing], at=now)
    names = {
        p.id: p.name for p in session.exec(select(Person).where(col(Person.id).in_({s.person_id for _, s in missing})))
    }
    paged = 0
    for unit, seg in missing:
        leader = on_duty.get((unit.id or 0, LEADER))
        if leader is None:
            continue
        row = outbox.enqueue(
            session,
            outbox.message(
                clock=clock,
                channel="sms",
                to=leader.phone,
                template="missed_check_in",
                params={
                    "unit": unit.name,
                    "name": names.get(seg.person_id, ""),
                    "shift_start": _local(seg.start, unit),
                    "minutes": int(grace.total_seconds() // 60),
                },
                dedup_key=f"checkin:{unit.code}:{int(seg.start.timestamp())}:{leader.id}",
                person_id=leader.id,
            ),
        )
        paged += row is not None
    return AlertResult(len(missing), paged)
