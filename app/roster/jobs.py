"""Roster alerts through the notification pipeline (scheduled; APScheduler only triggers them).

- Gaps: every unit/role with nobody on duty in the next 72 h is reported to the unit's leader and the parent
  unit's duty officer, at most once a day per gap and post.
- Missed check-ins: a duty officer who has not checked in `grace` after their shift started pages the unit's
  leader, once per shift. Only shifts that passed the grace recently are looked at, so a restart (or a new
  installation) does not page for shifts long under way.
Both go to a post through app.escalation.chase: a vacant post falls through at once up the chain (its leader, the
tier above, … the city's leader), and a wholly vacant chain tells every admin of the unit and above.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.clock import Clock
from app.escalation import chase
from app.escalation.paging import Pager
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


ROSTER_GAP = chase.register(
    chase.Kind(
        name="roster_gap",
        dedup_prefix="gap",
        templates=chase.Templates(post="roster_gap", leader="roster_gap", above="roster_gap"),
    )
)
MISSED_CHECK_IN = chase.register(
    chase.Kind(
        name="missed_check_in",
        dedup_prefix="checkin",
        templates=chase.Templates(post="missed_check_in", leader="missed_check_in", above="missed_check_in"),
    )
)


def gap_alerts(session: Session, *, clock: Clock, horizon: timedelta = timedelta(hours=72)) -> AlertResult:
    """Page about every roster gap in the coming `horizon`: the unit's leader and the parent unit's duty officer,
    each a post whose vacancy falls through up the chain (app.escalation.chase), so a gap is never told to nobody."""
    now = clock.now()
    units = _all_units(session)
    found = roster_service.gaps(session, units=units, start=now, end=now + horizon)
    if not found:
        return AlertResult(0, 0)
    by_id = {u.id: u for u in units}
    on_duty = roster_service.resolve_many(session, units=units, at=now)
    pager = Pager(session)
    for gap in found:
        unit = gap.unit
        parent = by_id.get(unit.parent_id) if unit.parent_id else None
        day = now.astimezone(roster_resolve.zone_of(unit)).date().isoformat()
        params = {"unit": unit.name, "role": gap.role, "start": _local(gap.start, unit), "end": _local(gap.end, unit)}
        posts = [(unit, LEADER, "leader")]
        # A vacant leader's post falls through to the parent's duty officer anyway: told once, not twice.
        if parent is not None and on_duty.get((unit.id or 0, LEADER)) is not None:
            posts.append((parent, DUTY_OFFICER, "parent"))
        for post, role, which in posts:
            subject = f"{unit.code}:{gap.role}:{int(gap.start.timestamp())}:{day}:{which}"
            chase.alert(session, clock=clock, kind=ROSTER_GAP, subject=subject, unit=post, role=role, params=params,
                        pager=pager)  # fmt: skip
    paged = sum(1 for page in pager.flush() if page.sent)
    return AlertResult(len(found), paged)


def missed_check_ins(
    session: Session,
    *,
    clock: Clock,
    grace: timedelta = timedelta(minutes=15),
    lookback: timedelta = timedelta(hours=2),
) -> AlertResult:
    """Page the leader of every unit whose duty officer has not checked in `grace` after their shift began (a
    vacant leader's post falls through up the chain, see app.escalation.chase)."""
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
    names = {
        p.id: p.name for p in session.exec(select(Person).where(col(Person.id).in_({s.person_id for _, s in missing})))
    }
    pager = Pager(session)
    for unit, seg in missing:
        chase.alert(
            session,
            clock=clock,
            kind=MISSED_CHECK_IN,
            subject=f"{unit.code}:{int(seg.start.timestamp())}",
            unit=unit,
            role=LEADER,
            params={
                "unit": unit.name,
                "name": names.get(seg.person_id, ""),
                "shift_start": _local(seg.start, unit),
                "minutes": int(grace.total_seconds() // 60),
            },
            pager=pager,
        )
    paged = sum(1 for page in pager.flush() if page.sent)
    return AlertResult(len(missing), paged)
