"""Explicit shifts and shift practice. `POST /api/v1/shifts` and `POST /api/v1/shifts/check-in` are distinct
paths (no path parameter sits between them), so they route independently."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.roster import gaps as gaps_made
from app.roster import practice
from app.roster import service as roster_service
from app.roster.schemas import (
    CheckInPublic,
    CheckInRequest,
    HandoverPublic,
    HandoverRequest,
    ShiftCreate,
    ShiftDeleted,
    ShiftLog,
    ShiftPublic,
)
from app.routers.deps import ClockDep, Id, PrincipalDep, SessionDep
from app.routers.times import parse_instant

router = APIRouter(prefix="/api/v1/shifts", tags=["shifts"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add one explicit shift (beats any rotation)")
def create_shift(data: ShiftCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> ShiftPublic:
    shift, unit, person = roster_service.create_shift(session, clock=clock, actor=principal, data=data)
    return roster_service.shift_public(shift, unit, person)


@router.delete(
    "/{shift_id}", summary="Delete an explicit shift; answers with the gaps it opens in the next 72 h (alerted at once)"
)
def delete_shift(shift_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> ShiftDeleted:
    deleted, opened = gaps_made.delete_shift(session, clock=clock, actor=principal, shift_id=shift_id)
    return ShiftDeleted(deleted=deleted, gaps_opened=gaps_made.public(opened))


@router.post(
    "/check-in",
    status_code=status.HTTP_201_CREATED,
    summary="Report for the shift you hold now (409 if you are not on duty); repeating it answers 200",
    responses={200: {"model": CheckInPublic, "description": "already checked in for this shift: the same check-in"}},
)
def check_in(
    data: CheckInRequest, response: Response, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> CheckInPublic:
    row, unit, person, created = practice.check_in(session, clock=clock, actor=principal, data=data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return practice.check_in_public(row, unit, person)


@router.post(
    "/handover",
    status_code=status.HTTP_201_CREATED,
    summary="Hand over (交接班): notes and open items for the incoming person, during or up to 2 h after your shift",
)
def handover(data: HandoverRequest, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> HandoverPublic:
    return practice.handover(session, clock=clock, actor=principal, data=data)


@router.get("/log", summary="Check-ins and handovers of a unit and its subtree (default: the last 7 days)")
def shift_log(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: Annotated[str, Query(pattern=r"^\d{6,12}$")],
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
) -> ShiftLog:
    end = parse_instant(to, field="to", default=clock.now() + timedelta(seconds=1))
    start = parse_instant(from_, field="from", default=end - timedelta(days=7))
    items = practice.shift_log(session, actor=principal, unit_code=unit, start=start, end=end)
    return ShiftLog(start=start, end=end, items=items)
