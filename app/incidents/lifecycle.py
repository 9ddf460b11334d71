"""What people do with an incident once it is in: acknowledge (签收) for their tier, escalate by hand, set the
level by hand, resolve and close. Each locks the incident row first (see app.escalation.steps on lock order).
None of them pages: they change state and make steps due; the escalation tick pages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from app import audit, labels
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Conflict, Forbidden, NotFound
from app.escalation import steps
from app.escalation.grading import Severity, is_graver
from app.escalation.rules import service as rules_service
from app.incidents import events, timeline
from app.incidents import service as incident_service
from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier, Report, ReportKind, Status
from app.org.models import TIER_ORDER, Person, Role, Tier, Unit, tier_above
from app.roster import service as roster_service

ACK_ROLES = {Role.duty_officer, Role.leader}


def _person(session: Session, actor: Principal) -> Person:
    if actor.kind != "person" or actor.id is None:
        raise Forbidden("only a signed-in duty officer or leader can do this")
    person = session.get(Person, actor.id)
    assert person is not None
    return person


def _tier_of(session: Session, inc: Incident, person: Person, *, clock: Clock) -> IncidentTier | None:
    """The incident's tier this person answers for: their home unit's, or one whose post they hold now."""
    states = session.exec(select(IncidentTier).where(IncidentTier.incident_id == inc.id)).all()
    for state in states:
        if state.unit_id == person.unit_id:
            return state
    units = [u for u in (session.get(Unit, s.unit_id) for s in states) if u is not None]
    on_duty = roster_service.resolve_many(session, units=units, at=clock.now())
    for state in states:
        for role in ACK_ROLES:
            holder = on_duty.get((state.unit_id, role))
            if holder is not None and holder.id == person.id:
                return state
    return None


def ack_tier_for(session: Session, *, clock: Clock, actor: Principal, inc: Incident) -> str | None:
    """The tier this actor could acknowledge for right now (required and not yet acknowledged), or None."""
    assert inc.id is not None
    return ack_tiers(session, clock=clock, actor=actor, incidents=[inc]).get(inc.id)


def ack_tiers(
    session: Session, *, clock: Clock, actor: Principal, incidents: Sequence[Incident]
) -> dict[int, str | None]:
    """For each incident, the tier this actor could acknowledge now (required, not yet acknowledged): the tier of
    their home unit, or one whose post they hold now (three queries for any number of incidents)."""
    if actor.kind != "person" or actor.id is None or not actor.can("incidents:ack") or not incidents:
        return {}
    person = session.get(Person, actor.id)
    if person is None or not set(person.roles) & ACK_ROLES:
        return {}
    ids = [inc.id for inc in incidents if inc.id is not None and inc.status in OPEN_STATUSES]
    states = session.exec(select(IncidentTier).where(col(IncidentTier.incident_id).in_(ids))).all() if ids else []
    by_incident: dict[int, list[IncidentTier]] = {}
    for state in states:
        by_incident.setdefault(state.incident_id, []).append(state)
    # Only for incidents where the person's home unit is not one of the tiers: who holds those tiers' posts now.
    elsewhere = {s.unit_id for rows in by_incident.values() if all(s.unit_id != person.unit_id for s in rows)
                 for s in rows}  # fmt: skip
    on_duty: dict[tuple[int, str], Person | None] = {}
    if elsewhere:
        units = list(session.exec(select(Unit).where(col(Unit.id).in_(elsewhere))).all())
        on_duty = roster_service.resolve_many(session, units=units, at=clock.now())
    out: dict[int, str | None] = {}
    for incident_id, rows in by_incident.items():
        mine = next((s for s in rows if s.unit_id == person.unit_id), None)
        if mine is None:
            held = [s for s in rows for role in ACK_ROLES if _holds(on_duty.get((s.unit_id, role)), person)]
            mine = held[0] if held else None
        out[incident_id] = mine.tier if mine is not None and mine.required and mine.acknowledged_at is None else None
    return out


def _holds(holder: Person | None, person: Person) -> bool:
    return holder is not None and holder.id == person.id


def acknowledge(
    session: Session, *, clock: Clock, actor: Principal, incident_id: int, via: str = "console"
) -> IncidentTier:
    """A duty officer or leader acknowledges (签收) for their tier; it stops that tier's chain only."""
    inc = incident_service.lock(session, incident_id)
    authorize(actor, "incidents:ack")
    person = _person(session, actor)
    if not set(person.roles) & ACK_ROLES:
        raise Forbidden("only a duty officer or a leader acknowledges")
    state = _tier_of(session, inc, person, clock=clock)
    if state is None or not state.required:
        raise Forbidden(f"{person.name} is not on a tier that must acknowledge incident {inc.code}")
    return acknowledge_tier(session, clock=clock, inc=inc, state=state, person=person, via=via)


def acknowledge_tier(
    session: Session, *, clock: Clock, inc: Incident, state: IncidentTier, person: Person, via: str
) -> IncidentTier:
    """Record an acknowledgement; acknowledging twice changes nothing."""
    state = session.exec(select(IncidentTier).where(IncidentTier.id == state.id).with_for_update()).one()
    if state.acknowledged_at is not None:
        return state
    if inc.status not in OPEN_STATUSES:
        raise Conflict(f"incident {inc.code} is {inc.status}")
    now = clock.now()
    state.acknowledged_at = now
    state.acknowledged_by_id = person.id
    state.acknowledged_by_name = person.name
    state.acknowledged_via = via
    state.next_step_at = None
    session.add(state)
    unit = session.get(Unit, state.unit_id)
    timeline.note(
        session,
        inc,
        at=now,
        kind="ack",
        tier=state.tier,
        actor=f"person:{person.id}:{person.name}",
        message=f"{unit.name if unit else state.tier}{person.name}签收（{labels.label('channels', via)}）",
        data={"person_id": person.id, "via": via, "step": state.step},
    )
    if inc.status == Status.reported:
        inc.status = Status.acknowledged
    inc.updated_at = now
    session.add(inc)
    session.flush()
    rules = rules_service.by_version(session, inc.rules_version)
    events.publish(session, clock=clock, inc=inc, rules=rules, event_type="incident.acknowledged")
    return state


def escalate(session: Session, *, clock: Clock, actor: Principal, incident_id: int, reason: str) -> IncidentTier:
    """Escalate by hand to the tier above the actor's own (an admin: above the highest required tier)."""
    inc = incident_service.lock(session, incident_id)
    if not incident_service.can_read(session, actor, inc):
        raise NotFound(f"no incident with id {incident_id}")
    if inc.status not in OPEN_STATUSES:
        raise Conflict(f"incident {inc.code} is {inc.status}")
    authorize(actor, "incidents:ack")
    ctx = incident_service.context(session, clock, inc)
    person = _person(session, actor)
    state = _tier_of(session, inc, person, clock=clock)
    if state is not None:
        start = state.tier
    elif Role.admin in person.roles:  # can_read above established the incident is in the admin's subtree
        required = session.exec(
            select(IncidentTier).where(IncidentTier.incident_id == inc.id, col(IncidentTier.required).is_(True))
        ).all()
        start = max((s.tier for s in required), key=lambda t: TIER_ORDER.index(Tier(t)))
    else:
        raise Forbidden(f"{person.name} is not on this incident's chain")
    above = tier_above(start)
    if above is None or above not in ctx.units:
        raise Conflict("there is no tier above the city")
    result = steps.escalate_to(
        ctx, above, because=start, manual_reason=f"{person.name}手动升级：{reason}", actor=actor.actor
    )
    inc.updated_at = ctx.now
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.escalated")
    return result


def set_severity(
    session: Session, *, clock: Clock, actor: Principal, incident_id: int, severity: Severity, reason: str
) -> Incident:
    """A leader or admin sets the level by hand, with a reason (the only way a level goes down)."""
    inc = incident_service.lock(session, incident_id)
    unit = session.get(Unit, inc.unit_id)
    if not incident_service.can_read(session, actor, inc):
        raise NotFound(f"no incident with id {incident_id}")
    authorize(actor, "incidents:grade", unit)
    if inc.status == Status.closed:
        raise Conflict(f"incident {inc.code} is closed")
    old = Severity(inc.severity)
    if severity == old:
        return inc
    now = clock.now()
    inc.manual_severity = severity
    inc.severity = severity
    inc.updated_at = now
    who = labels.named(session, actor)
    timeline.note(
        session,
        inc,
        at=now,
        kind="regraded",
        actor=actor.actor,
        message=f"{who}将等级由{labels.level(old)}调整为{labels.level(severity)}：{reason}",
        data={"from": old, "to": severity, "reason": reason, "manual": True},
    )
    ctx = incident_service.context(session, clock, inc)
    if is_graver(severity, old):
        steps.apply_plan(ctx, reason=f"人工调整为{severity}级", regraded_from=old)
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.severity_changed")
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="incident.severity",
        object_type="incident",
        object_id=inc.id,
        unit_path=inc.unit_path,
        before={"severity": old},
        after={"severity": severity, "reason": reason},
    )
    return inc


def _finish(session: Session, *, clock: Clock, actor: Principal, inc: Incident, kind: str, message: str) -> None:
    """Resolved or closed: every escalation timer stops; the timeline and subscribers are told."""
    now = clock.now()
    for state in session.exec(select(IncidentTier).where(IncidentTier.incident_id == inc.id).with_for_update()):
        if state.next_step_at is not None or state.notice_at is not None:
            state.next_step_at = None
            state.notices, state.notice_at = None, None
            session.add(state)
    inc.updated_at = now
    timeline.note(session, inc, at=now, kind=kind, actor=actor.actor, message=message)
    session.add(inc)
    session.flush()
    rules = rules_service.by_version(session, inc.rules_version)
    events.publish(session, clock=clock, inc=inc, rules=rules, event_type=f"incident.{kind}")


def _authorize_lifecycle(session: Session, actor: Principal, inc: Incident, *, clock: Clock) -> None:
    if not incident_service.can_read(session, actor, inc):
        raise NotFound(f"no incident with id {inc.id}")
    unit = session.get(Unit, inc.unit_id)
    if actor.kind == "agency":
        if inc.source != actor.label:
            raise Forbidden("only the reporting agency may do this")
        authorize(actor, "incidents:write", unit)
        return
    authorize(actor, "incidents:ack")
    person = _person(session, actor)
    if Role.admin in person.roles:  # can_read above established the incident is in the admin's subtree
        return
    state = _tier_of(session, inc, person, clock=clock)
    if state is None or not state.required:
        raise Forbidden(f"{person.name} is not on a tier that must acknowledge incident {inc.code}")


def resolve(session: Session, *, clock: Clock, actor: Principal, incident_id: int, reason: str) -> Incident:
    """Mark an incident resolved (处置完毕): every escalation timer stops; the final report may follow."""
    inc = incident_service.lock(session, incident_id)
    _authorize_lifecycle(session, actor, inc, clock=clock)
    if inc.status not in OPEN_STATUSES:
        raise Conflict(f"incident {inc.code} is already {inc.status}")
    now = clock.now()
    inc.status = Status.resolved
    inc.resolved_at = now
    _finish(session, clock=clock, actor=actor, inc=inc, kind="resolved", message=f"处置完毕：{reason}")
    return inc


def close(session: Session, *, clock: Clock, actor: Principal, incident_id: int, reason: str) -> Incident:
    """Close an incident; it needs the final report (终报) first."""
    inc = incident_service.lock(session, incident_id)
    _authorize_lifecycle(session, actor, inc, clock=clock)
    if inc.status == Status.closed:
        raise Conflict(f"incident {inc.code} is already closed")
    has_final = session.exec(
        select(func.count()).select_from(Report).where(Report.incident_id == inc.id, Report.kind == ReportKind.final)
    ).one()
    if not has_final:
        raise Conflict("file the final report (终报) before closing")
    now = clock.now()
    if inc.status in OPEN_STATUSES:
        inc.resolved_at = now
    inc.status = Status.closed
    inc.closed_at = now
    inc.report_due_at = None
    _finish(session, clock=clock, actor=actor, inc=inc, kind="closed", message=f"结案：{reason}")
    return inc
