"""Roll-calls of duty posts (查岗点名) and their unannounced schedules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from app.org import units as unit_service
from app.rollcall import schedules, views
from app.rollcall import service as rollcall_service
from app.rollcall.schemas import (
    RollCallAnswer,
    RollCallCreate,
    RollCallDetail,
    RollCallPublic,
    ScheduleCreate,
    SchedulePublic,
)
from app.routers.deps import ClockDep, Id, PagingDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(tags=["roll-calls"])


@router.post(
    "/api/v1/roll-calls", status_code=status.HTTP_201_CREATED, summary="Call the roll of the posts below a unit"
)
def start_roll_call(
    data: RollCallCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> RollCallDetail:
    rc = rollcall_service.start(session, clock=clock, actor=principal, data=data)
    return views.detail(session, rc)


@router.get("/api/v1/roll-calls", summary="Roll-calls called within your subtree (or by one unit), newest first")
def list_roll_calls(
    session: SessionDep,
    principal: PrincipalDep,
    paging: PagingDep,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$")] = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
) -> Page[RollCallPublic]:
    root = unit_service.get(session, unit, field="unit") if unit else None
    rows, total = rollcall_service.listing(
        session, actor=principal, unit=root, since=from_, until=to, limit=paging.limit, offset=paging.offset
    )
    return Page(items=views.public_many(session, rows), total=total, limit=paging.limit, offset=paging.offset)


@router.get("/api/v1/roll-calls/{roll_call_id}", summary="One roll-call: every post's entry and the summary")
def get_roll_call(roll_call_id: Id, session: SessionDep, principal: PrincipalDep) -> RollCallDetail:
    return views.detail(session, rollcall_service.get(session, actor=principal, roll_call_id=roll_call_id))


@router.post("/api/v1/roll-calls/{roll_call_id}/answer", summary="Answer the roll: I am at my post (确认在岗)")
def answer_roll_call(
    roll_call_id: Id,
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    data: RollCallAnswer | None = None,
) -> RollCallDetail:
    body = data or RollCallAnswer()
    rollcall_service.answer(
        session, clock=clock, actor=principal, roll_call_id=roll_call_id, unit_code=body.unit_code, role=body.role
    )
    return views.detail(session, rollcall_service.get(session, actor=principal, roll_call_id=roll_call_id))


@router.post(
    "/api/v1/roll-call-schedules",
    status_code=status.HTTP_201_CREATED,
    summary="Unannounced roll-calls: instants drawn at random each day inside a window",
)
def create_schedule(
    data: ScheduleCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> SchedulePublic:
    return schedules.public(session, schedules.create(session, clock=clock, actor=principal, data=data))


@router.get("/api/v1/roll-call-schedules", summary="Unannounced roll-call schedules within your subtree")
def list_schedules(session: SessionDep, principal: PrincipalDep) -> list[SchedulePublic]:
    return [schedules.public(session, s) for s in schedules.listing(session, actor=principal)]
