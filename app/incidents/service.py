"""Incident intake, grading, reports and reading. Every change lands on the timeline in the same transaction as
its escalation state (the steps it makes due) and webhooks, or none of it does; the escalation tick pages.
Acknowledgement, escalation by hand, manual grading, resolve and close are in app.incidents.lifecycle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, func, select

from app import audit, labels
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.db import insert_unless_conflict
from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.escalation import planning, steps
from app.escalation.grading import Severity, computed, graver, is_graver
from app.escalation.rules import service as rules_service
from app.incidents import codes, events, timeline
from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier, Report, ReportKind, Status
from app.incidents.schemas import Casualties, IncidentCreate, ReportCreate
from app.org import paths
from app.org import units as unit_service
from app.org.models import Tier, Unit


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


def context(session: Session, clock: Clock, inc: Incident) -> steps.Context:
    return steps.load_context(session, clock, inc)


def lock(session: Session, incident_id: int) -> Incident:
    inc = session.exec(select(Incident).where(Incident.id == incident_id).with_for_update()).first()
    if inc is None:
        raise NotFound(f"no incident with id {incident_id}")
    return inc


def _find_repeat(session: Session, source: str, external_id: str) -> Incident | None:
    return session.exec(
        select(Incident).where(Incident.source == source, Incident.external_id == external_id).with_for_update()
    ).first()


@dataclass
class Intake:
    """What `report` did: the incident, whether it is new, and for a new one the rows written with it
    (so that the answer is built without reading them back)."""

    incident: Incident
    created: bool
    tiers: list[IncidentTier] | None = None
    units: list[Unit] = field(default_factory=list)


FUTURE_TOLERANCE = timedelta(minutes=10)


def report(session: Session, *, clock: Clock, actor: Principal, data: IncidentCreate) -> Intake:
    """Take in an incident or, for a repeat of the same external_id from the same source, update it.

    A new incident is written with its tier rows (the required ones with their first step due now), its
    "reported" timeline entry, its audit row and its webhook event, in the caller's transaction; no roster is
    read and nothing is paged here: the commit wakes the escalation tick, which pages.
    """
    authorize(actor, "incidents:write")
    now = clock.now()
    if data.occurred_at > now + FUTURE_TOLERANCE:
        raise Invalid.field("occurred_at", "is more than 10 minutes in the future")
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    if unit.tier == Tier.city:
        raise Invalid.field("unit_code", "give the street/township or district where it happened, not the city")
    authorize(actor, "incidents:write", unit)
    source = source_of(actor)
    if data.external_id is not None:
        existing = _find_repeat(session, source, data.external_id)
        if existing is not None:
            return Intake(
                _update_from_repeat(session, clock=clock, actor=actor, inc=existing, unit=unit, data=data), False
            )
    rules = rules_service.current(session)
    reported = data.severity
    figures_level = computed(
        deaths=data.casualties.deaths,
        serious_injuries=data.casualties.injuries,
        economic_loss_cny=data.economic_loss_cny,
    )
    severity = graver(reported, figures_level)
    assert unit.id is not None and rules.version is not None
    chain = unit_service.by_codes(session, unit.path.split("/"))
    tiers = {u.tier for u in chain}
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
        lead_tier=planning.plan(rules, severity, sensitive=data.sensitive, tiers=tiers).lead,
        rules_version=rules.version,
        status=Status.reported,
        created_at=now,
        updated_at=now,
        report_due_at=now + timedelta(seconds=rules.level(severity).first_report_due_seconds),
    )
    _set_figures(inc, data.casualties, data.economic_loss_cny)
    existing = _insert_unless_repeat(session, inc)
    if existing is not None:  # a concurrent repeat committed first
        return Intake(_update_from_repeat(session, clock=clock, actor=actor, inc=existing, unit=unit, data=data), False)
    timeline.note(
        session,
        inc,
        at=now,
        kind="reported",
        actor=actor.actor,
        message=f"{labels.named(session, actor)}报告：{inc.title}（{labels.level(severity)}）",
        data={
            "severity": severity,
            "reported_severity": reported,
            "computed_severity": figures_level,
            "rules_version": rules.version,
            "figures": _figures(inc),
        },
    )
    ctx = steps.new_context(session, clock, inc, rules, chain)
    rows = steps.new_tiers(ctx, reason="新报事件")
    session.add_all(rows)
    events.publish(session, clock=clock, inc=inc, rules=rules, event_type="incident.created")
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
    return Intake(inc, True, tiers=rows, units=chain)


def _insert_unless_repeat(session: Session, inc: Incident) -> Incident | None:
    """Write the new incident's row in one statement; or, when its source already sent this external_id
    (a concurrent request that committed after our look-up), leave it unwritten and return that incident.

    ON CONFLICT DO NOTHING rather than a savepoint and a caught IntegrityError: one round trip, and a
    conflict leaves the transaction usable. A conflict that is no repeat is a short code already taken."""
    table = Incident.__table__  # type: ignore[attr-defined]
    for _ in range(8):
        row = {c.name: getattr(inc, c.name) for c in table.columns if not c.primary_key}
        new_id = insert_unless_conflict(session, table, row)
        if new_id is not None:
            inc.id = new_id
            # The row is in the database as this object holds it: attach it without another INSERT.
            make_transient_to_detached(inc)
            session.add(inc)
            return None
        if inc.external_id is not None:
            existing = _find_repeat(session, inc.source, inc.external_id)
            if existing is not None:
                return existing
        inc.code = codes.new_code()
    raise Conflict("could not allocate an incident code; retry")


def _update_from_repeat(
    session: Session, *, clock: Clock, actor: Principal, inc: Incident, unit: Unit, data: IncidentCreate
) -> Incident:
    """A repeat updates only the fields it carries; an omitted field keeps its value (figures included: a repeat
    that leaves out `casualties`, one of its counts, `economic_loss_cny`, `address` or `location` never zeroes
    them). New figures can raise the level; it is never lowered automatically."""
    if inc.unit_id != unit.id:
        raise Invalid.field("unit_code", f"incident {inc.code} is at another unit; a repeat cannot move it")
    if inc.status == Status.closed:
        raise Conflict(f"incident {inc.code} is closed")
    carried = data.model_fields_set
    changed: dict[str, Any] = {}
    simple: dict[str, Any] = {"category": data.category, "title": data.title.strip(), "occurred_at": data.occurred_at}
    for name in ("description", "address", "sensitive"):
        if name in carried:
            simple[name] = getattr(data, name)
    if "location" in carried:
        simple["lat"] = data.location.lat if data.location else None
        simple["lon"] = data.location.lon if data.location else None
    for key, value in simple.items():
        if getattr(inc, key) != value:
            changed[key] = {"from": _jsonable(getattr(inc, key)), "to": _jsonable(value)}
            setattr(inc, key, value)
    before = _figures(inc)
    casualties = _merged_casualties(inc, data.casualties) if "casualties" in carried else None
    loss = data.economic_loss_cny if "economic_loss_cny" in carried else None
    figures_changed = _set_figures(inc, casualties, loss)
    if figures_changed:
        changed["figures"] = {"from": before, "to": _figures(inc)}
    if data.severity is not None and data.severity != inc.reported_severity:
        changed["reported_severity"] = {"from": inc.reported_severity, "to": data.severity}
        inc.reported_severity = data.severity
    if not changed:
        return inc
    now = clock.now()
    inc.updated_at = now
    fields = "、".join(dict.fromkeys(labels.field(k) for k in changed))
    timeline.note(
        session,
        inc,
        at=now,
        kind="updated",
        actor=actor.actor,
        message=f"{labels.named(session, actor)}更新：{fields}",
        data={"changes": changed},
    )
    ctx = context(session, clock, inc)
    regraded = _regrade(ctx, figures_changed=figures_changed, actor=actor.actor, reason="更新的数字")
    if "sensitive" in changed and not regraded:
        steps.apply_plan(ctx, reason="敏感事件")
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.updated")
    return inc


def _merged_casualties(inc: Incident, given: Casualties) -> Casualties:
    """The counts a repeat or a report carries over the incident's own: a count it leaves out keeps its value."""
    current = {"deaths": inc.deaths, "injuries": inc.serious_injuries, "trapped": inc.trapped, "missing": inc.missing}
    return Casualties(**(current | {name: getattr(given, name) for name in given.model_fields_set}))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _regrade(ctx: steps.Context, *, figures_changed: bool, actor: str, reason: str) -> bool:
    """Recompute the level; never lower it automatically. A rise re-plans the tiers: new ones are due at once."""
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
    ctx.note(kind="regraded", actor=actor, message=f"等级由{labels.level(old)}调整为{labels.level(new)}（{reason}）",
             data={"from": old, "to": new, "computed": inc.computed_severity})  # fmt: skip
    if is_graver(new, old):
        steps.apply_plan(ctx, reason=f"升级为{new}级", regraded_from=old)
    events.publish(ctx.session, clock=ctx.clock, inc=inc, rules=ctx.rules, event_type="incident.severity_changed")
    return True


def _sev(value: str | None) -> Severity | None:
    return Severity(value) if value else None


def get(session: Session, *, actor: Principal, incident_id: int) -> Incident:
    inc = session.get(Incident, incident_id)
    if inc is None or not can_read(session, actor, inc):
        raise NotFound(f"no incident with id {incident_id}")
    return inc


def ids_by_code(session: Session, *, actor: Principal, codes: Sequence[str]) -> dict[str, int]:
    """Code -> id for the incidents among `codes` the actor may read (others are left out, not refused)."""
    if not codes:
        return {}
    rows = session.exec(select(Incident).where(col(Incident.code).in_(set(codes)))).all()
    return {inc.code: inc.id for inc in rows if inc.id is not None and can_read(session, actor, inc)}


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
    return paths.within(inc.unit_path, actor.unit_path)


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
    casualties = _merged_casualties(inc, data.casualties) if data.casualties is not None else None
    figures_changed = _set_figures(inc, casualties, data.economic_loss_cny)
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
    label = labels.REPORT_KINDS[data.kind]
    timeline.note(
        session,
        inc,
        at=now,
        kind="report",
        actor=actor.actor,
        message=f"{label}第{entry.number}号" + ("（迟报）" if late else ""),
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
    ctx = context(session, clock, inc)
    if figures_changed:
        _regrade(ctx, figures_changed=True, actor=actor.actor, reason=f"{label}数字")
    if inc.report_due_at is not None:  # the level may have changed the follow-up interval
        interval = ctx.rules.level(Severity(inc.severity)).follow_up_interval_seconds
        inc.report_due_at = now + timedelta(seconds=interval)
    session.add(inc)
    session.flush()
    events.publish(session, clock=clock, inc=inc, rules=ctx.rules, event_type="incident.updated")
    return inc, entry


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
        query = query.where(paths.sql_within(col(Incident.unit_path), actor.unit_path))
    if unit is not None:
        query = query.where(paths.sql_within(col(Incident.unit_path), unit.path))
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
