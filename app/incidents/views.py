"""Incidents as the API shows them: with their tiers, and (for one incident) timeline and reports."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.escalation.grading import Severity
from app.incidents.models import Incident, IncidentTier, Report, Status, TimelineEntry
from app.incidents.schemas import (
    Casualties,
    IncidentDetail,
    IncidentPublic,
    Location,
    PersonRef,
    ReportPublic,
    TierState,
    TierStateName,
    TimelineItem,
)
from app.incidents.states import TierStatus, overall_state, tier_status
from app.org import units as unit_service
from app.org.models import TIER_ORDER, Tier, Unit


def public_many(
    session: Session,
    incidents: Sequence[Incident],
    *,
    tiers: Sequence[IncidentTier] | None = None,
    units: Sequence[Unit] = (),
) -> list[IncidentPublic]:
    """Several incidents in two queries, whatever their number; none for what the caller already holds
    (`tiers`: all the incidents' tier rows; `units`: some of the units they name)."""
    ids = [i.id for i in incidents if i.id is not None]
    states: dict[int, list[IncidentTier]] = {i: [] for i in ids}
    if tiers is None and ids:
        tiers = session.exec(select(IncidentTier).where(col(IncidentTier.incident_id).in_(ids))).all()
    for s in tiers or ():
        states[s.incident_id].append(s)
    known = {u.id: u for u in units if u.id is not None}
    wanted = {i.unit_id for i in incidents} | {s.unit_id for group in states.values() for s in group}
    by_id = known | unit_service.codes_by_id(session, wanted - known.keys())
    out = []
    for inc in incidents:
        assert inc.id is not None
        unit = by_id[inc.unit_id]
        chain = sorted(states[inc.id], key=lambda s: TIER_ORDER.index(Tier(s.tier)))
        present = [s.tier for s in chain]
        out.append(
            IncidentPublic(
                id=inc.id,
                code=inc.code,
                status=Status(inc.status),
                severity=Severity(inc.severity),
                severity_color=Severity(inc.severity).color,
                reported_severity=Severity(inc.reported_severity) if inc.reported_severity else None,
                computed_severity=Severity(inc.computed_severity),
                lead_tier=inc.lead_tier,
                rules_version=inc.rules_version,
                category=inc.category,
                title=inc.title,
                description=inc.description,
                unit_code=unit.code,
                unit_name=unit.name,
                address=inc.address,
                location=Location(lat=inc.lat, lon=inc.lon) if inc.lat is not None and inc.lon is not None else None,
                occurred_at=inc.occurred_at,
                casualties=Casualties(
                    deaths=inc.deaths, injuries=inc.serious_injuries, trapped=inc.trapped, missing=inc.missing
                ),
                economic_loss_cny=inc.economic_loss_cny,
                sensitive=inc.sensitive,
                source=inc.source,
                external_id=inc.external_id,
                created_at=inc.created_at,
                updated_at=inc.updated_at,
                report_due_at=inc.report_due_at,
                ack_state=overall_state(inc.status, chain).value,
                tiers=[
                    TierState(
                        tier=s.tier,
                        unit_code=by_id[s.unit_id].code,
                        unit_name=by_id[s.unit_id].name,
                        state=tier_state(s),
                        required=s.required,
                        informed=s.informed,
                        passed_over=tier_status(s, present) == TierStatus.passed_over,
                        step=s.step,
                        acknowledged_at=s.acknowledged_at,
                        acknowledged_by=PersonRef(id=s.acknowledged_by_id, name=s.acknowledged_by_name or "")
                        if s.acknowledged_by_id is not None
                        else None,
                        next_step_at=s.next_step_at,
                    )
                    for s in chain
                ],
            )
        )
    return out


# A tier passed over (越级) still owes its acknowledgement: to the API it is still paging (and `passed_over`).
_API_STATE: dict[TierStatus, TierStateName] = {
    TierStatus.paging: "paging",
    TierStatus.passed_over: "paging",
    TierStatus.acknowledged: "acknowledged",
    TierStatus.informed: "informed",
    TierStatus.idle: "idle",
}


def tier_state(s: IncidentTier) -> TierStateName:
    return _API_STATE[tier_status(s, ())]


def public(
    session: Session, inc: Incident, *, tiers: Sequence[IncidentTier] | None = None, units: Sequence[Unit] = ()
) -> IncidentPublic:
    return public_many(session, [inc], tiers=tiers, units=units)[0]


def detail(session: Session, inc: Incident) -> IncidentDetail:
    timeline = session.exec(
        select(TimelineEntry).where(TimelineEntry.incident_id == inc.id).order_by(col(TimelineEntry.id))
    ).all()
    reports = session.exec(select(Report).where(Report.incident_id == inc.id).order_by(col(Report.number))).all()
    return IncidentDetail(
        **public(session, inc).model_dump(),
        timeline=[TimelineItem.model_validate(t, from_attributes=True) for t in timeline],
        reports=[ReportPublic.model_validate(r, from_attributes=True) for r in reports],
    )
