"""Unannounced roll-calls (不定时抽查): each local day, `times_per_day` instants are drawn at random inside a
wall-clock window (which may cross midnight); the tick starts a roll-call at each. The instants still to come and
the next one are columns of the schedule row, so a restart or a second replica changes nothing."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Forbidden
from app.org import paths
from app.org import units as unit_service
from app.org.models import Unit
from app.rollcall import service as rollcall_service
from app.rollcall.models import RollCallSchedule, Scope
from app.rollcall.schemas import RollCallCreate, ScheduleCreate, SchedulePublic
from app.roster.models import DutyRole
from app.roster.resolve import zone_of
from app.roster.timeline import wall_to_utc

# Drawn with the operating system's randomness: an unannounced check must not be predictable from earlier ones.
_random = random.SystemRandom()


def _window(schedule: RollCallSchedule, unit: Unit, day: date) -> tuple[datetime, datetime]:
    zone = zone_of(unit)
    start = wall_to_utc(datetime.combine(day, schedule.window_start), zone)
    end_day = day if schedule.window_end > schedule.window_start else day + timedelta(days=1)
    end = wall_to_utc(datetime.combine(end_day, schedule.window_end), zone)
    return start, end


def draw(schedule: RollCallSchedule, unit: Unit, day: date) -> list[datetime]:
    """`times_per_day` random instants, to the second, inside the window that opens on local `day`."""
    start, end = _window(schedule, unit, day)
    seconds = int((end - start).total_seconds())
    picks = sorted(_random.sample(range(seconds), min(schedule.times_per_day, seconds)))
    return [start + timedelta(seconds=s) for s in picks]


def plan(schedule: RollCallSchedule, unit: Unit, now: datetime) -> None:
    """Once the planned instants are used up, draw the next day's (those still ahead); set the timer to the earliest.

    An instant already due stays planned (two drawn close together both fire, one tick apart)."""
    planned = [datetime.fromisoformat(t) for t in schedule.planned]
    day = now.astimezone(zone_of(unit)).date() - timedelta(days=1)  # yesterday's window may still be open
    drawn = date.fromisoformat(schedule.drawn_for) if schedule.drawn_for else None
    for _ in range(4):
        if planned:
            break
        if drawn is None or day > drawn:
            planned = [t for t in draw(schedule, unit, day) if t > now]
            drawn = day
        day += timedelta(days=1)
    schedule.planned = [t.isoformat() for t in planned]
    schedule.drawn_for = drawn.isoformat() if drawn else None
    schedule.next_at = planned[0] if planned else None


def create(session: Session, *, clock: Clock, actor: Principal, data: ScheduleCreate) -> RollCallSchedule:
    """A schedule of unannounced roll-calls for the posts below a unit."""
    code = data.unit_code or actor.unit_code
    if code is None:
        raise Forbidden("give unit_code: this principal has no unit of its own")
    unit = unit_service.get(session, code, field="unit_code")
    authorize(actor, "rollcalls:write", unit)
    from app.notices import targets  # the scope must not be empty, as for a roll-call called by hand

    targets.resolve(session, actor=actor, root=unit, scope=data.scope, field="scope")
    start, end = data.window()
    assert unit.id is not None
    schedule = RollCallSchedule(
        unit_id=unit.id,
        unit_path=unit.path,
        scope=data.scope,
        roles=list(dict.fromkeys(str(r) for r in data.roles)),
        times_per_day=data.times_per_day,
        window_start=start,
        window_end=end,
        answer_within_seconds=data.answer_within_seconds,
        created_at=clock.now(),
        created_by=actor.actor,
    )
    plan(schedule, unit, clock.now())
    session.add(schedule)
    session.flush()
    # The drawn instants stay out of the audit log and the API: they would announce the unannounced.
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="rollcall_schedule.create",
        object_type="roll_call_schedule",
        object_id=schedule.id,
        unit_path=unit.path,
        after={"scope": schedule.scope, "times_per_day": schedule.times_per_day, "between": _between(schedule)},
    )
    return schedule


def _between(schedule: RollCallSchedule) -> str:
    return f"{schedule.window_start:%H:%M}-{schedule.window_end:%H:%M}"


def listing(session: Session, *, actor: Principal) -> list[RollCallSchedule]:
    authorize(actor, "rollcalls:read")
    query = select(RollCallSchedule)
    if actor.unit_path is not None:
        query = query.where(paths.sql_within(col(RollCallSchedule.unit_path), actor.unit_path))
    return list(session.exec(query.order_by(col(RollCallSchedule.id))).all())


def public(session: Session, schedule: RollCallSchedule) -> SchedulePublic:
    unit = session.get(Unit, schedule.unit_id)
    assert schedule.id is not None and unit is not None
    return SchedulePublic(
        id=schedule.id,
        unit_code=unit.code,
        scope=Scope(schedule.scope),
        roles=schedule.roles,
        times_per_day=schedule.times_per_day,
        between=_between(schedule),
        answer_within_seconds=schedule.answer_within_seconds,
        # Only that one is due some time today or tomorrow, not when: the API says whether one is planned.
        next_at=None,
        active=schedule.active,
    )


def due(session: Session, *, clock: Clock, limit: int = 50) -> int:
    """Start the roll-call of every schedule whose drawn instant has come (claimed with row locks)."""
    now = clock.now()
    rows = session.exec(
        select(RollCallSchedule)
        .where(col(RollCallSchedule.next_at) <= now, col(RollCallSchedule.active).is_(True))
        .order_by(col(RollCallSchedule.next_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for schedule in rows:
        unit = session.get(Unit, schedule.unit_id)
        assert unit is not None and schedule.id is not None
        actor = Principal.system(f"system:rollcall-schedule:{schedule.id}")
        rollcall_service.start(
            session,
            clock=clock,
            actor=actor,
            data=RollCallCreate(
                unit_code=unit.code,
                scope=Scope(schedule.scope),
                roles=[DutyRole(r) for r in schedule.roles],
                answer_within_seconds=schedule.answer_within_seconds,
                note="不定时抽查",
            ),
            schedule_id=schedule.id,
        )
        schedule.planned = schedule.planned[1:]
        plan(schedule, unit, now)
        session.add(schedule)
    session.flush()
    return len(rows)
