"""Incident intake, grading, reports and lifecycle. Every change lands on the timeline in the same
transaction as its pages (outbox rows) and webhooks, or none of it does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.escalation import engine
from app.escalation import rules as rules_service
from app.escalation.grading import Severity, computed, graver, is_graver
from app.incidents import codes, events
from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier, Report, ReportKind, Status
from app.incidents.schemas import Casualties, IncidentCreate, ReportCreate
from app.org import units as unit_service
from app.org.models import Person, Role, Tier, Unit
from app.roster import service as roster_service

ACK_ROLES = {Role.duty_officer, Role.leader}


def source_of(actor: Principal) -> str:
    """The stable name of a reporter, part of the (source, external_id) idempotency key."""
    return actor.label if actor.kind == "agency" else f"{actor.kind}:{actor.id}"


def _figures(inc: Incident) -> dict[str, Any]:
    return {
        "deaths": inc.deaths,
        "injuries": inc.serious_injuries,
        "trapped": inc.trapped,
        "missing": inc.missing,
        "economic_loss_cny": inc.economic_loss_cny,
    }


def _set_figures(inc: Incident, casualties: Casualties | None, loss: float | None) -> bool:
    before = _figures(inc)
    if casualties is not None:
        inc.deaths, inc.serious_injuries = casualties.deaths, casualties.injuries
        inc.trapped, inc.missing = casualties.trapped, casualties.missing
    if loss is not None:
        inc.economic_loss_cny = loss
    return _figures(inc) != before


def _context(session: Session, clock: Clock, inc: Incident) -> engine.Context:
    return engine.load_context(
        session, clock=clock, incident=inc, rules=rules_service.by_version(session, inc.rules_version)
    )


def lock(session: Session, incident_id: int) -> Incident:
    inc = session.exec(select(Incident).where(Incident.id == incident_id).with_for_update()).first()
    if inc is None:
        raise NotFound(f"no incident with id {incident_id}")
    return inc


def report(session: Session, *, clock: Clock, actor: Principal, data: IncidentCreate) -> tuple[Incident, bool]:
    """Take in an incident (True) or, for a repeat of the same external_id from the same source, update it (False)."""
    authorize(actor, "incidents:write")
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    if unit.tier == Tier.city:
        raise Invalid.field("unit_code", "give the street/township or district where it happened, not the city")
    authorize(actor, "incidents:write", unit)
    source = source_of(actor)
    if data.external_id is not None:
        existing = session.exec(
            select(Incident)
            .where(Incident.source == source, Incident.external_id == data.external_id)
            .with_for_update()
        ).first()
        if existing is not None:
            return _update_from_repeat(session, clock=clock, actor=actor, inc=existing, unit=unit, data=data), False
    now = clock.now()
    rules = rules_service.current(session)
    reported = data.severity
    figures_level = computed(
        deaths=data.casualties.deaths,
        serious_injuries=data.casualties.injuries,
        economic_loss_cny=data.economic_loss_cny,
    )
    severity = graver(reported, figures_level)
    assert unit.id is not None and rules.version is not None
    inc = Incident(
        code=codes.new_code(),
        source=source,
        external_id=data.external_id,
        category=data.category,
        title=data.title.strip(),
        description=data.description,
        unit_id=unit.id,
        unit_path=unit.path,
        address=data.address,
        lat=data.location.lat if data.location else None,
        lon=data.location.lon if data.location else None,
        occurred_at=data.occurred_at,
        sensitive=data.sensitive,
        reported_severity=reported,
        computed_severity=figures_level,
        severity=severity,
        lead_tier="",
        rules_version=rules.version,
        status=Status.reported,
        created_at=now,
        updated_at=now,
        report_due_at=now + timedelta(seconds=rules.level(severity).first_report_due_seconds),
    )
    _set_figures(inc, data.casualties, data.economic_loss_cny)
    for _ in range(8):
        try:
            with session.begin_nested():
                session.add(inc)
            break
        except IntegrityError:
            if inc in session:  # the savepoint's rollback usually expunges it already
                session.expunge(inc)
            if data.external_id is not None:
                # A concurrent request with the same external_id committed first: this is a repeat.
                existing = session.exec(
                    select(Incident)
                    .where(Incident.source == source, Incident.external_id == data.external_id)
                    .with_for_update()
                ).first()
                if existing is not None:
                    return _update_from_repeat(
                        session, clock=clock, actor=actor, inc=existing, unit=unit, data=data
                    ), False
            inc.code = codes.new_code()  # the short code collided
    else:
        raise Conflict("could not allocate an incident code; retry")
    ctx = _context(session, clock, inc)
    engine.note(
        session,
        inc,
        at=now,
        kind="reported",
        actor=actor.actor,
        message=f"{actor.actor}报告:{inc.title}({Severity(severity).label},{severity}级)",
        data={
            "severity": severity,
            "reported_severity": reported,
            "computed_severity": figures_level,
            "rules_version": rules.version,
            "figures": _figures(inc),
        },
    )
    engine.apply_plan(ctx, reason="新报事件")
    inc.updated_at = now
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.created")
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="incident.create",
        object_type="incident",
        object_id=inc.id,
        unit_path=inc.unit_path,
        after={"code": inc.code, "severity": severity},
    )
    return inc, True


def _update_from_repeat(
    session: Session, *, clock: Clock, actor: Principal, inc: Incident, unit: Unit, data: IncidentCreate
) -> Incident:
    if inc.unit_id != unit.id:
        raise Invalid.field("unit_code", f"incident {inc.code} is at another unit; a repeat cannot move it")
    if inc.status == Status.closed:
        raise Conflict(f"incident {inc.code} is closed")
    changed: dict[str, Any] = {}
    simple = {
        "category": data.category,
        "title": data.title.strip(),
        "description": data.description,
        "address": data.address,
        "occurred_at": data.occurred_at,
        "sensitive": data.sensitive,
        "lat": data.location.lat if data.location else None,
        "lon": data.location.lon if data.location else None,
    }
    for key, value in simple.items():
        if getattr(inc, key) != value:
            changed[key] = {"from": _jsonable(getattr(inc, key)), "to": _jsonable(value)}
            setattr(inc, key, value)
    before = _figures(inc)
    figures_changed = _set_figures(inc, data.casualties, data.economic_loss_cny)
    if figures_changed:
        changed["figures"] = {"from": before, "to": _figures(inc)}
    if data.severity is not None and data.severity != inc.reported_severity:
        changed["reported_severity"] = {"from": inc.reported_severity, "to": data.severity}
        inc.reported_severity = data.severity
    if not changed:
        return inc
    now = clock.now()
    inc.updated_at = now
    engine.note(
        session,
        inc,
        at=now,
        kind="updated",
        actor=actor.actor,
        message=f"{actor.actor}更新:{', '.join(changed)}",
        data={"changes": changed},
    )
    ctx = _context(session, clock, inc)
    regraded = _regrade(ctx, figures_changed=figures_changed, actor=actor.actor, reason="更新的数字")
    if "sensitive" in changed and not regraded:
        engine.apply_plan(ctx, reason="敏感事件")
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.updated")
    return inc


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _regrade(ctx: engine.Context, *, figures_changed: bool, actor: str, reason: str) -> bool:
    """Recompute the level; never lower it automatically. A rise re-plans the tiers and pages new ones at once."""
    inc = ctx.incident
    inc.computed_severity = computed(
        deaths=inc.deaths, serious_injuries=inc.serious_injuries, economic_loss_cny=inc.economic_loss_cny
    )
    if figures_changed:
        inc.manual_severity = None  # a hand-lowered level holds only until new figures arrive
    candidate = graver(_sev(inc.reported_severity), Severity(inc.computed_severity))
    old = Severity(inc.severity)
    new = Severity(inc.manual_severity) if inc.manual_severity else graver(candidate, old)
    if new == old:
        return False
    inc.severity = new
    engine.note(
        ctx.session,
        inc,
        at=ctx.now,
        kind="regraded",
        actor=actor,
        message=f"等级由{old}级调整为{new}级({reason})",
        data={"from": old, "to": new, "computed": inc.computed_severity},
    )
    if is_graver(new, old):
        engine.apply_plan(ctx, reason=f"升级为{new}级")
    events.publish(ctx.session, clock=ctx.clock, inc=inc, rules=ctx.rules, event_type="incident.severity_changed")
    return True


def _sev(value: str | None) -> Severity | None:
    return Severity(value) if value else None


def get(session: Session, *, actor: Principal, incident_id: int) -> Incident:
    inc = session.get(Incident, incident_id)
    if inc is None or not can_read(session, actor, inc):
        raise NotFound(f"no incident with id {incident_id}")
    return inc


def can_read(session: Session, actor: Principal, inc: Incident) -> bool:
    """People read incidents in their subtree and those whose chain includes their unit; agencies read
    what they posted and what the rules route to their kind within their scope."""
    if not actor.can("incidents:read"):
        raise Forbidden(f"{actor.actor} lacks the permission 'incidents:read'")
    if actor.kind == "system":
        return True
    if actor.kind == "agency":
        if inc.source == actor.label:
            return True
        return events.agency_receives(session, actor, inc)
    # A person's unit is on an incident's chain exactly when the incident lies in that unit's subtree.
    assert actor.unit_path is not None
    return inc.unit_path == actor.unit_path or inc.unit_path.startswith(actor.unit_path + "/")


def add_report(
    session: Session, *, clock: Clock, actor: Principal, incident_id: int, data: ReportCreate
) -> tuple[Incident, Report]:
    """File a first, follow-up or final report; new figures re-grade (and may page new tiers at once)."""
    inc = lock(session, incident_id)
    if not can_read(session, actor, inc):
        raise NotFound(f"no incident with id {incident_id}")
    authorize(actor, "incidents:write")
    if actor.kind == "agency" and inc.source != actor.label:
        raise Forbidden("only the reporting agency may file reports on this incident")
    if inc.status == Status.closed:
        raise Conflict(f"incident {inc.code} is closed")
    kinds = list(session.exec(select(Report.kind).where(Report.incident_id == inc.id)).all())
    if ReportKind.final in kinds:
        raise Conflict("the final report (终报) is filed; no more reports")
    if data.kind == ReportKind.first and ReportKind.first in kinds:
        raise Conflict("the first report (首报) is already filed; file a follow-up")
    now = clock.now()
    late = inc.report_due_at is not None and now > inc.report_due_at
    assert inc.id is not None
    rules = rules_service.by_version(session, inc.rules_version)
    figures_changed = _set_figures(inc, data.casualties, data.economic_loss_cny)
    entry = Report(
        incident_id=inc.id,
        kind=data.kind,
        number=len(kinds) + 1,
        text=data.text,
        figures=_figures(inc) if figures_changed else None,
        author=actor.actor,
        at=now,
        late=late,
    )
    session.add(entry)
    label = {ReportKind.first: "首报", ReportKind.follow_up: "续报", ReportKind.final: "终报"}[data.kind]
    engine.note(
        session,
        inc,
        at=now,
        kind="report",
        actor=actor.actor,
        message=f"{label}第{entry.number}号" + ("(迟报)" if late else ""),
        data={
            "kind": data.kind,
            "number": entry.number,
            "late": late,
            "figures": _figures(inc) if figures_changed else None,
        },
    )
    if data.kind == ReportKind.final:
        inc.report_due_at = None
    elif inc.status in OPEN_STATUSES:
        interval = rules.level(Severity(inc.severity)).follow_up_interval_seconds
        inc.report_due_at = now + timedelta(seconds=interval)
    if data.kind == ReportKind.first and inc.first_report_at is None:
        inc.first_report_at = now
    if inc.status in (Status.reported, Status.acknowledged):
        inc.status = Status.responding
    inc.updated_at = now
    ctx = _context(session, clock, inc)
    if figures_changed:
        _regrade(ctx, figures_changed=True, actor=actor.actor, reason=f"{label}数字")
    if inc.report_due_at is not None:  # the level may have changed the follow-up interval
        interval = ctx.rules.level(Severity(inc.severity)).follow_up_interval_seconds
        inc.report_due_at = now + timedelta(seconds=interval)
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.updated")
    return inc, entry


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
    now = clock.now()
    for state in states:
        unit = session.get(Unit, state.unit_id)
        assert unit is not None
        for role in ACK_ROLES:
            holder = roster_service.resolve(session, unit=unit, role=role, at=now)
            if holder is not None and holder.id == person.id:
                return state
    return None


def acknowledge(
    session: Session, *, clock: Clock, actor: Principal, incident_id: int, via: str = "console"
) -> IncidentTier:
    """A duty officer or leader acknowledges (签收) for their tier; it stops that tier's chain only."""
    inc = lock(session, incident_id)
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
    engine.note(
        session,
        inc,
        at=now,
        kind="ack",
        tier=state.tier,
        actor=f"person:{person.id}:{person.name}",
        message=f"{unit.name if unit else state.tier}{person.name}签收({via})",
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
    inc = lock(session, incident_id)
    if not can_read(session, actor, inc):
        raise NotFound(f"no incident with id {incident_id}")
    if inc.status not in OPEN_STATUSES:
        raise Conflict(f"incident {inc.code} is {inc.status}")
    authorize(actor, "incidents:ack")
    ctx = _context(session, clock, inc)
    person = _person(session, actor)
    state = _tier_of(session, inc, person, clock=clock)
    if state is not None:
        start = state.tier
    elif Role.admin in person.roles:  # can_read above established the incident is in the admin's subtree
        required = session.exec(
            select(IncidentTier).where(IncidentTier.incident_id == inc.id, col(IncidentTier.required).is_(True))
        ).all()
        start = max((s.tier for s in required), key=lambda t: engine.TIER_ORDER.index(Tier(t)))
    else:
        raise Forbidden(f"{person.name} is not on this incident's chain")
    above = engine.tier_above(start)
    if above is None or above not in ctx.units:
        raise Conflict("there is no tier above the city")
    result = engine.escalate_to(
        ctx, above, because=start, manual_reason=f"{person.name}手动升级:{reason}", actor=actor.actor
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
    inc = lock(session, incident_id)
    unit = session.get(Unit, inc.unit_id)
    if not can_read(session, actor, inc):
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
    engine.note(
        session,
        inc,
        at=now,
        kind="regraded",
        actor=actor.actor,
        message=f"{actor.actor}将等级由{old}级调整为{severity}级:{reason}",
        data={"from": old, "to": severity, "reason": reason, "manual": True},
    )
    ctx = _context(session, clock, inc)
    if is_graver(severity, old):
        engine.apply_plan(ctx, reason=f"人工调整为{severity}级")
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


def _stop_timers(session: Session, inc: Incident) -> None:
    for state in session.exec(select(IncidentTier).where(IncidentTier.incident_id == inc.id).with_for_update()):
        if state.next_step_at is not None:
            state.next_step_at = None
            session.add(state)


def _authorize_lifecycle(session: Session, actor: Principal, inc: Incident, *, clock: Clock) -> None:
    if not can_read(session, actor, inc):
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
    inc = lock(session, incident_id)
    _authorize_lifecycle(session, actor, inc, clock=clock)
    if inc.status not in OPEN_STATUSES:
        raise Conflict(f"incident {inc.code} is already {inc.status}")
    now = clock.now()
    inc.status = Status.resolved
    inc.resolved_at = now
    inc.updated_at = now
    _stop_timers(session, inc)
    engine.note(session, inc, at=now, kind="resolved", actor=actor.actor, message=f"处置完毕:{reason}")
    session.add(inc)
    session.flush()
    events.publish(
        session,
        clock=clock,
        inc=inc,
        rules=rules_service.by_version(session, inc.rules_version),
        event_type="incident.resolved",
    )
    return inc


def close(session: Session, *, clock: Clock, actor: Principal, incident_id: int, reason: str) -> Incident:
    """Close an incident; it needs the final report (终报) first."""
    inc = lock(session, incident_id)
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
    inc.updated_at = now
    _stop_timers(session, inc)
    engine.note(session, inc, at=now, kind="closed", actor=actor.actor, message=f"结案:{reason}")
    session.add(inc)
    session.flush()
    events.publish(
        session,
        clock=clock,
        inc=inc,
        rules=rules_service.by_version(session, inc.rules_version),
        event_type="incident.closed",
    )
    return inc


def listing(
    session: Session,
    *,
    actor: Principal,
    status: Status | None,
    severity: Severity | None,
    unit: Unit | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Incident], int]:
    """Incidents the actor may read, newest first, with the total count."""
    authorize(actor, "incidents:read")
    query = select(Incident)
    if actor.kind == "agency":
        query = query.where(events.agency_visibility(session, actor))
    elif actor.kind == "person" and actor.unit_path is not None:
        query = query.where(_in_subtree(actor.unit_path))
    if unit is not None:
        query = query.where(_in_subtree(unit.path))
    if status is not None:
        query = query.where(Incident.status == status)
    if severity is not None:
        query = query.where(Incident.severity == severity)
    if since is not None:
        query = query.where(col(Incident.created_at) >= since)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Incident.created_at).desc(), col(Incident.id).desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def _in_subtree(path: str) -> Any:
    return (col(Incident.unit_path) == path) | col(Incident.unit_path).startswith(path + "/")
