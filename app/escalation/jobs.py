"""Scheduled entry points. APScheduler only triggers these; the timers themselves are rows.

Each function takes a session and claims at most `limit` due rows with row locks (FOR UPDATE SKIP LOCKED on
PostgreSQL; SQLite has a single writer), acts, and leaves the commit to the caller, so a test can call it
directly and several replicas can run it at once without doing any step twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, tuple_
from sqlmodel import Session, col, func, or_, select

from app import audit, labels
from app.auth.principal import Principal
from app.clock import Clock
from app.db import transaction
from app.escalation import chase, steps
from app.escalation.chase import DUTY_OFFICER
from app.escalation.models import Chase
from app.escalation.paging import Pager
from app.incidents import timeline
from app.incidents.models import OPEN_STATUSES, Heartbeat, Incident, IncidentTier, TimelineEntry
from app.org.models import Tier, Unit, tier_above
from app.roster import resolve as roster_resolve

SCHEDULER = Principal.system("scheduler")
BATCH = 200  # due rows claimed per transaction (other replicas claim the rest with SKIP LOCKED)


@dataclass
class TickResult:
    steps: int = 0
    overdue_reports: int = 0
    missed_heartbeats: int = 0
    chase_steps: int = 0
    # How late each step fired (seconds past its next_step_at), for the lateness metric.
    lateness: list[float] = field(default_factory=list)
    more: bool = False
    # When the earliest timer still waiting falls due (None: nothing is waiting), so the caller can wake then.
    next_due: datetime | None = None


def _claim(session: Session, query, limit: int):  # type: ignore[no-untyped-def]
    return session.exec(query.limit(limit).with_for_update(skip_locked=True)).all()


def escalation_steps(session: Session, *, clock: Clock, limit: int = BATCH) -> TickResult:
    """Take the next step (and send the notices owed) of every tier row that is due (up to `limit`), gravest
    level first, across incidents.

    The work is read in bulk (the incidents, their units, who is on duty on every chain, the tiers above) and the
    batch's pages go to the outbox in one INSERT: a handful of statements per batch rather than per step.
    """
    now = clock.now()
    result = TickResult()
    due = steps.claim_due(session, now=now, limit=limit)
    if not due:
        return result
    incidents = session.exec(select(Incident).where(col(Incident.id).in_({s.incident_id for s in due}))).all()
    batch = timeline.Batch(session)
    contexts = steps.load_contexts(session, clock, incidents, batch=batch)
    above_held = _lock_tiers_above(session, due)
    for state in due:
        ctx = contexts[state.incident_id]
        above = tier_above(state.tier)
        stepping = state.next_step_at is not None and state.next_step_at <= now
        if stepping and above is not None and (state.incident_id, str(above)) not in above_held:
            # Another replica holds the tier above (it may be escalating it right now). Waiting for it here
            # could deadlock two ticks, so this step waits for the next tick instead.
            continue
        due_at = min((t for t in (state.next_step_at, state.notice_at) if t is not None and t <= now), default=None)
        if due_at is None:  # an earlier row of this batch already took it (an escalation from the tier below)
            continue
        result.lateness.append((clock.now() - due_at).total_seconds())  # when it is taken
        if steps.take(ctx, state):
            result.steps += 1
    batch.flush()
    result.more = len(due) == limit
    session.flush()
    return result


def _lock_tiers_above(session: Session, due: Sequence[IncidentTier]) -> set[tuple[int, str]]:
    """The (incident, tier above) pairs this tick may touch: locked here now, or with no such tier at all."""
    wanted = {(s.incident_id, str(above)) for s in due if (above := tier_above(s.tier)) is not None}
    if not wanted:
        return set()
    pair = tuple_(col(IncidentTier.incident_id), col(IncidentTier.tier))
    query = select(IncidentTier.incident_id, IncidentTier.tier).where(pair.in_(list(wanted)))
    held = {(i, str(t)) for i, t in session.exec(query.with_for_update(skip_locked=True)).all()}
    existing = {(i, str(t)) for i, t in session.exec(query).all()}
    return held | (wanted - existing)


def _incident_note(session: Session, c: Chase, event: chase.Event, pager: Pager | None) -> None:
    """A chase about an incident (a late report) writes its events on the incident's timeline."""
    if c.incident_id is None or event.kind not in ("vacant", "all_vacant", "page"):
        return
    inc = session.get(Incident, c.incident_id)
    if inc is None:
        return
    row = timeline.row(inc, at=event.at, kind=event.kind, message=event.message, data=event.data)
    if pager is not None:
        pager.later(TimelineEntry.__table__, row)  # type: ignore[attr-defined]
    else:
        session.add(TimelineEntry(**row))


REPORT_OVERDUE = chase.register(
    chase.Kind(
        name="report_overdue",
        dedup_prefix="late",
        templates=chase.Templates(post="report_overdue", leader="report_overdue", above="report_overdue"),
        note=_incident_note,
    )
)
HEARTBEAT_MISSED = chase.register(
    chase.Kind(
        name="heartbeat_missed",
        dedup_prefix="hb",
        templates=chase.Templates(post="heartbeat_missed", leader="heartbeat_missed", above="heartbeat_missed"),
    )
)


def overdue_reports(session: Session, *, clock: Clock, limit: int = BATCH) -> int:
    """A lead tier that misses its written report: the tier above's duty officer is paged (a vacant post falls
    through up the chain, see app.escalation.chase); the timeline says 迟报."""
    now = clock.now()
    late = _claim(
        session,
        select(Incident).where(
            col(Incident.report_due_at) <= now,
            col(Incident.status).in_(OPEN_STATUSES),
            or_(
                col(Incident.overdue_notified_for).is_(None),
                col(Incident.overdue_notified_for) != col(Incident.report_due_at),
            ),
        ),
        limit,
    )
    if not late:
        return 0
    contexts = steps.load_contexts(session, clock, late)
    pager = Pager(session)
    for inc in late:
        due = inc.report_due_at
        assert due is not None and inc.id is not None
        ctx = contexts[inc.id]
        above = tier_above(inc.lead_tier) or Tier.city
        target = ctx.units[above] if above in ctx.units else ctx.units[inc.lead_tier]
        kind = "first" if inc.first_report_at is None else "follow_up"
        lead_unit = ctx.units[inc.lead_tier]
        timeline.note(
            session,
            inc,
            at=now,
            kind="late",
            tier=inc.lead_tier,
            message=f"{lead_unit.name}{labels.REPORT_KINDS[kind]}逾期（迟报）",
            data={"due_at": due.isoformat(), "report": kind},
        )
        chase.alert(
            session,
            clock=clock,
            kind=REPORT_OVERDUE,
            subject=f"{inc.id}:{int(due.timestamp())}",
            unit=target,
            role=DUTY_OFFICER,
            params=ctx.params(
                unit=lead_unit.name,
                report=kind,
                due=due.astimezone(roster_resolve.zone_of(lead_unit)).strftime("%m-%d %H:%M"),
            ),
            incident_id=inc.id,
            code=inc.code,
            pager=pager,
        )
        inc.overdue_notified_for = due
        session.add(inc)
    pager.flush()
    session.flush()
    return len(late)


def missed_heartbeats(session: Session, *, clock: Clock, limit: int = 100) -> int:
    """An integration that stopped pinging pages the city duty officer once per silence (a vacant post falls
    through to the city's leader, then the admins)."""
    now = clock.now()
    missed = _claim(
        session,
        select(Heartbeat).where(col(Heartbeat.due_at) <= now, col(Heartbeat.missed_at).is_(None)),
        limit,
    )
    if not missed:
        return 0
    city = session.exec(select(Unit).where(Unit.tier == Tier.city)).first()
    pager = Pager(session)
    for hb in missed:
        hb.missed_at = now
        session.add(hb)
        audit.record(
            session,
            clock=clock,
            actor=SCHEDULER,
            action="heartbeat.missed",
            object_type="heartbeat",
            object_id=hb.name,
            after={"last_seen_at": hb.last_seen_at.isoformat()},
        )
        if city is not None:
            chase.alert(
                session,
                clock=clock,
                kind=HEARTBEAT_MISSED,
                subject=f"{hb.name}:{int(hb.last_seen_at.timestamp())}"[:80],
                unit=city,
                role=DUTY_OFFICER,
                params={"name": hb.name, "minutes": int((now - hb.last_seen_at).total_seconds() // 60)},
                pager=pager,
            )
    pager.flush()
    session.flush()
    return len(missed)


_NEXT_DUE = select(
    select(func.min(IncidentTier.next_step_at)).scalar_subquery(),
    select(func.min(IncidentTier.notice_at)).scalar_subquery(),
    select(func.min(Chase.next_step_at)).where(chase.OPEN).scalar_subquery(),
)


def next_due(session: Session) -> datetime | None:
    """The earliest timer waiting: a tier's step or notice, or an open chase (one statement: a tick that finds
    nothing due costs its claims and this)."""
    row = session.exec(_NEXT_DUE).one()
    return min((t for t in row if t is not None), default=None)


def chase_steps(session: Session, *, clock: Clock, limit: int = BATCH) -> chase.StepResult:
    """The next step of every due chase (app.escalation.chase), their pages in one INSERT."""
    pager = Pager(session)
    result = chase.steps(session, clock=clock, pager=pager, limit=limit)
    pager.flush()
    session.flush()
    return result


def tick(session: Session, *, clock: Clock, limit: int = BATCH) -> TickResult:
    """One pass of every timer kind, in the caller's transaction."""
    result = escalation_steps(session, clock=clock, limit=limit)
    result.overdue_reports = overdue_reports(session, clock=clock, limit=limit)
    result.missed_heartbeats = missed_heartbeats(session, clock=clock)
    chased = chase_steps(session, clock=clock, limit=limit)
    result.chase_steps = chased.steps
    result.more = result.more or result.overdue_reports == limit or chased.more
    return result


def run_tick(engine_: Engine, *, clock: Clock, limit: int = BATCH) -> TickResult:
    """Run ticks, one transaction per batch, until nothing due is left (what the scheduler calls)."""
    total = TickResult()
    while True:
        with transaction(engine_) as session:
            r = tick(session, clock=clock, limit=limit)
            if not r.more:
                total.next_due = next_due(session)
        total.steps += r.steps
        total.overdue_reports += r.overdue_reports
        total.missed_heartbeats += r.missed_heartbeats
        total.chase_steps += r.chase_steps
        total.lateness.extend(r.lateness)
        if not r.more:
            return total
