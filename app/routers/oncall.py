from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.roster import views as roster_views
from app.roster.schemas import Board, OnCallEntry
from app.routers.deps import ClockDep, PrincipalDep, SessionDep
from app.routers.times import parse_instant

router = APIRouter(prefix="/api/v1/oncall", tags=["on duty"])

At = Annotated[
    str | None,
    Query(description="ISO 8601 instant, e.g. 2026-04-18T08:30:00+08:00 (default: now)", max_length=64),
]


@router.get("", summary="Who is on duty from a unit up to the city (the unit first)")
def oncall(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: Annotated[str, Query(pattern=r"^\d{6,12}$", description="unit code")],
    at: At = None,
) -> list[OnCallEntry]:
    when = parse_instant(at, field="at", default=clock.now())
    return roster_views.oncall_chain(session, actor=principal, unit_code=unit, at=when)


@router.get("/board", summary="Who is on duty at every unit you may see, in tree order")
def oncall_board(session: SessionDep, clock: ClockDep, principal: PrincipalDep, at: At = None) -> Board:
    when = parse_instant(at, field="at", default=clock.now())
    return Board(at=when, items=roster_views.board(session, actor=principal, at=when))
