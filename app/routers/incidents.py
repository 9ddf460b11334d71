from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from app.escalation.grading import Severity
from app.incidents import lifecycle, views
from app.incidents import service as incident_service
from app.incidents.models import Status
from app.incidents.schemas import (
    IncidentCreate,
    IncidentDetail,
    IncidentPublic,
    NotificationPublic,
    Reason,
    ReportCreate,
    SeverityChange,
    TierState,
)
from app.notify import outbox
from app.org import units as unit_service
from app.routers.deps import ClockDep, Id, PagingDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": IncidentPublic, "description": "a repeat of the same external_id: the same incident"}},
    summary="Report an incident (201), or update it when the same source repeats an external_id (200)",
    description="The 201 comes once the incident, its tier rows (the first step due now), its timeline entry and "
    "its webhook event are committed; the escalation tick pages within moments of that commit (the answer's tiers "
    "say `paging`). A repeat of the same `external_id` from the same source (200) updates only the fields it "
    "carries: omitted fields, figures included, keep their values and are never silently zeroed; new figures can "
    "raise the level. `occurred_at` more than 10 minutes in the future is a 422.",
)
def create_incident(
    data: IncidentCreate, response: Response, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> IncidentPublic:
    intake = incident_service.report(session, clock=clock, actor=principal, data=data)
    if not intake.created:
        response.status_code = status.HTTP_200_OK
    return views.public(session, intake.incident, tiers=intake.tiers, units=intake.units)


@router.get("", summary="Incidents you may read, newest first, paginated")
def list_incidents(
    session: SessionDep,
    principal: PrincipalDep,
    paging: PagingDep,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    severity: Severity | None = None,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$")] = None,
    since: AwareDatetime | None = None,
) -> Page[IncidentPublic]:
    root = unit_service.get(session, unit, field="unit") if unit else None
    rows, total = incident_service.listing(
        session,
        actor=principal,
        status=status_,
        severity=severity,
        unit=root,
        since=since,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page(items=views.public_many(session, rows), total=total, limit=paging.limit, offset=paging.offset)


@router.get("/{incident_id}", summary="One incident with its tiers, timeline and reports")
def get_incident(incident_id: Id, session: SessionDep, principal: PrincipalDep) -> IncidentDetail:
    return views.detail(session, incident_service.get(session, actor=principal, incident_id=incident_id))


@router.post(
    "/{incident_id}/reports",
    status_code=status.HTTP_201_CREATED,
    summary="File the first report (首报), a follow-up (续报) or the final report (终报)",
)
def add_report(
    incident_id: Id, data: ReportCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> IncidentDetail:
    inc, _ = incident_service.add_report(session, clock=clock, actor=principal, incident_id=incident_id, data=data)
    return views.detail(session, inc)


@router.post("/{incident_id}/ack", summary="Acknowledge (签收) for your tier")
def acknowledge(incident_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> IncidentPublic:
    lifecycle.acknowledge(session, clock=clock, actor=principal, incident_id=incident_id, via="console")
    return views.public(session, incident_service.get(session, actor=principal, incident_id=incident_id))


@router.post("/{incident_id}/escalate", summary="Escalate by hand to the tier above yours, with a reason")
def escalate(incident_id: Id, data: Reason, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> TierState:
    state = lifecycle.escalate(session, clock=clock, actor=principal, incident_id=incident_id, reason=data.reason)
    inc = incident_service.get(session, actor=principal, incident_id=incident_id)
    return next(t for t in views.public(session, inc).tiers if t.tier == state.tier)


@router.post("/{incident_id}/severity", summary="Set the level by hand (leaders, admins), with a reason")
def set_severity(
    incident_id: Id, data: SeverityChange, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> IncidentPublic:
    inc = lifecycle.set_severity(
        session, clock=clock, actor=principal, incident_id=incident_id, severity=data.severity, reason=data.reason
    )
    return views.public(session, inc)


@router.post("/{incident_id}/resolve", summary="Mark resolved: every escalation timer stops")
def resolve(
    incident_id: Id, data: Reason, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> IncidentPublic:
    inc = lifecycle.resolve(session, clock=clock, actor=principal, incident_id=incident_id, reason=data.reason)
    return views.public(session, inc)


@router.post("/{incident_id}/close", summary="Close (needs the final report)")
def close(
    incident_id: Id, data: Reason, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> IncidentPublic:
    inc = lifecycle.close(session, clock=clock, actor=principal, incident_id=incident_id, reason=data.reason)
    return views.public(session, inc)


@router.get("/{incident_id}/notifications", summary="Every message about this incident, with delivery status")
def notifications(incident_id: Id, session: SessionDep, principal: PrincipalDep) -> Page[NotificationPublic]:
    inc = incident_service.get(session, actor=principal, incident_id=incident_id)
    assert inc.id is not None
    rows = outbox.for_incident(session, inc.id)
    items = [
        NotificationPublic(
            id=m.id,
            channel=m.channel,
            to=m.recipient,
            person_id=m.person_id,
            tier=m.tier,
            step=m.step,
            status=m.status,
            attempts=m.attempts,
            provider=m.provider,
            provider_id=m.provider_id,
            created_at=m.created_at,
            sent_at=m.sent_at,
            error=m.last_error,
        )
        for m in rows
    ]
    return Page(items=items, total=len(items), limit=len(items), offset=0)
