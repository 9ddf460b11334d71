from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from app.heartbeats import service as heartbeats
from app.incidents.schemas import HeartbeatIn, HeartbeatPublic
from app.routers.deps import ClockDep, PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1/heartbeats", tags=["heartbeats"])


@router.post("/{name}", summary="An integration's liveness ping; a missed interval pages the city duty officer")
def ping(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")],
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    data: Annotated[HeartbeatIn | None, Body()] = None,
) -> HeartbeatPublic:
    interval = (data or HeartbeatIn()).interval_seconds
    hb = heartbeats.ping(session, clock=clock, actor=principal, name=name, interval_seconds=interval)
    return HeartbeatPublic(
        name=hb.name, interval_seconds=hb.interval_seconds, last_seen_at=hb.last_seen_at, due_at=hb.due_at, status="ok"
    )
