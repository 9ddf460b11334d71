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

from app import audit
from app.auth.principal import Principal
from app.clock import Clock
from app.db import transaction
from app.escalation import chase, engine
from app.escalation import rules as rules_service
from app.escalation.models import Chase, ChaseStatus
from app.escalation.paging import Pager
from app.escalation.rules import RulesDocument
from app.incidents.models import OPEN_STATUSES, Heartbeat, Incident, IncidentTier
from app.notify import outbox
from app.org.models import Tier, Unit
from app.roster import resolve as roster_resolve
from app.roster import service as roster_service

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
    """Take the next step of every tier whose timer is due (up to `limit`).

    The work is read in bulk (the incidents, their units, who is on duty on every chain, the tiers above):
    a handful of queries per batch rather than per step, so that a storm of due steps is not late for long.
    """
    now = clock.now()
    result = TickResult()
    due = _claim(
        session,
        select(IncidentTier)
        .where(col(IncidentTier.next_step_at) <= now, col(IncidentTier.acknowledged_at).is_(None))
        .order_by(col(IncidentTier.next_step_at)),
        limit,
    )
    if not due:
        return result
    contexts = _contexts(session, clock, {s.incident_id for s in due})
    above_held = _lock_tiers_above(session, due)
    with engine.batched(session):  # the batch's pages in one INSERT
        for state in due:
            assert state.next_step_at is not None
            ctx = contexts[state.incident_id]
            if ctx.incident.status not in OPEN_STATUSES:
                state.next_step_at = None
                session.add(state)
                continue
            above = engine.tier_above(state.tier)
            if above is not None and (state.incident_id, str(above)) not in above_held:
                # Another replica holds the tier above (it may be escalating it right now). Waiting for it here
                # could deadlock two ticks, so this step waits for the next tick instead.
                continue
            result.lateness.append((clock.now() - state.next_step_at).total_seconds())  # when it is taken
            engine.advance(ctx, state)
            session.add(state)
            result.steps += 1
    result.more = len(due) == limit
    session.flush()
    return result


def _contexts(session: Session, clock: Clock, incident_ids: set[int]) -> dict[int, engine.Context]:
    """The escalation context of each incident, sharing one read of their units and of who is on duty."""
    incidents = session.exec(select(Incident).where(col(Incident.id).in_(incident_ids))).all()
    codes = {code for inc in incidents for code in inc.unit_path.split("/")}
    units = {u.code: u for u in session.exec(select(Unit).where(col(Unit.code).in_(codes))).all()}
    now = clock.now()
    chains = {inc.id: {units[c].tier: units[c] for c in inc.unit_path.split("/") if c in units} for inc in incidents}
    on_chains = {u.code: u for inc in incidents if inc.status in OPEN_STATUSES for u in chains[inc.id].values()}
    posts = roster_service.resolve_many(session, units=list(on_chains.values()), at=now) if on_chains else {}
    rules: dict[int, RulesDocument] = {}
    out: dict[int, engine.Context] = {}
    for inc in incidents:
        assert inc.id is not None
        if inc.rules_version not in rules:
            rules[inc.rules_version] = rules_service.by_version(session, inc.rules_version)
        ctx = engine.Context(
            session=session, clock=clock, incident=inc, rules=rules[inc.rules_version], units=chains[inc.id], now=now
        )
        ctx.share_posts(posts)
        out[inc.id] = ctx
    return out


def _lock_tiers_above(session: Session, due: Sequence[IncidentTier]) -> set[tuple[int, str]]:
    """The (incident, tier above) pairs this tick may touch: locked here now, or with no such tier at all."""
    wanted = {(s.incident_id, str(above)) for s in due if (above := engine.tier_above(s.tier)) is not None}
    if not wanted:
        return set()
    pair = tuple_(col(IncidentTier.incident_id), col(IncidentTier.tier))
    query = select(IncidentTier.incident_id, IncidentTier.tier).where(pair.in_(list(wanted)))
    held = {(i, str(t)) for i, t in session.exec(query.with_for_update(skip_locked=True)).all()}
    existing = {(i, str(t)) for i, t in session.exec(query).all()}
    return held | (wanted - existing)


def overdue_reports(session: Session, *, clock: Clock, limit: int = BATCH) -> int:
    """A lead tier that misses its written report: the tier above's duty officer is paged; the timeline says 迟报."""
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
    for inc in late:
        due = inc.report_due_at
        assert due is not None
        rules = rules_service.by_version(session, inc.rules_version)
        ctx = engine.load_context(session, clock=clock, incident=inc, rules=rules)
        above = engine.tier_above(inc.lead_tier) or Tier.city
        target = above if above in ctx.units else Tier(inc.lead_tier)
        state = session.exec(
            select(IncidentTier).where(IncidentTier.incident_id == inc.id, IncidentTier.tier == target)
        ).one()
        kind = "first" if inc.first_report_at is None else "follow_up"
        engine.note(
            session,
            inc,
            at=now,
            kind="late",
            tier=inc.lead_tier,
            message=f"{ctx.units[inc.lead_tier].name}{'首报' if kind == 'first' else '续报'}逾期(迟报)",
            data={"due_at": due.isoformat(), "report": kind},
        )
        lead_unit = ctx.units[inc.lead_tier]
        engine.page(
            ctx,
            state,
            role=engine.DUTY_OFFICER,
            template="report_overdue",
            notice=f"late-{int(due.timestamp())}",
            unit=lead_unit.name,
            report=kind,
            due=due.astimezone(roster_resolve.zone_of(lead_unit)).strftime("%m-%d %H:%M"),
        )
        inc.overdue_notified_for = due
        session.add(inc)
    session.flush()
    return len(late)


def missed_heartbeats(session: Session, *, clock: Clock, limit: int = 100) -> int:
    """An integration that stopped pinging pages the city duty officer once per silence."""
    now = clock.now()
    missed = _claim(
        session,
        select(Heartbeat).where(col(Heartbeat.due_at) <= now, col(Heartbeat.missed_at).is_(None)),
        limit,
    )
    city = session.exec(select(Unit).where(Unit.tier == Tier.city)).first()
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
        officer = roster_service.resolve(session, unit=city, role=engine.DUTY_OFFICER, at=now) if city else None
        if officer is not None:
            outbox.enqueue(
                session,
                outbox.message(
                    clock=clock,
                    channel="sms",
                    to=officer.phone,
                    template="heartbeat_missed",
                    params={"name": hb.name, "minutes": int((now - hb.last_seen_at).total_seconds() // 60)},
                    dedup_key=f"hb:{hb.name}:{int(hb.last_seen_at.timestamp())}:{officer.id}",
                    person_id=officer.id,
                ),
            )
    session.flush()
    return len(missed)


def next_due(session: Session) -> datetime | None:
    """The earliest timer waiting: a tier nobody has acknowledged yet, or an open chase."""
    tiers = session.exec(
        select(func.min(IncidentTier.next_step_at)).where(col(IncidentTier.acknowledged_at).is_(None))
    ).one()
    chases = session.exec(select(func.min(Chase.next_step_at)).where(Chase.status == ChaseStatus.open.value)).one()
    return min((t for t in (tiers, chases) if t is not None), default=None)


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
