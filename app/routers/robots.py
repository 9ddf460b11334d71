from __future__ import annotations

from fastapi import APIRouter, status

from app import netguard
from app.errors import Invalid
from app.notify import robots as robot_service
from app.notify.robots import RobotCreate, RobotPublic
from app.routers.deps import ClockDep, Id, PrincipalDep, SessionDep, SettingsDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1/units", tags=["robots"])


@router.post(
    "/{code}/robots",
    status_code=status.HTTP_201_CREATED,
    summary="Register a WeCom or DingTalk group robot: the unit's pages are also posted to its group",
)
def create_robot(
    code: str, data: RobotCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep, settings: SettingsDep
) -> RobotPublic:
    def check(url: str) -> None:
        try:
            netguard.check_url(url, allow_private=settings.webhook_allow_private)
        except netguard.Refused as exc:
            raise Invalid.field("webhook_url", exc.reason) from exc

    return robot_service.create(session, clock=clock, actor=principal, unit_code=code, data=data, check_url=check)


@router.get("/{code}/robots", summary="A unit's group robots (keys masked, secrets never shown)")
def list_robots(code: str, session: SessionDep, principal: PrincipalDep) -> Page[RobotPublic]:
    rows = robot_service.listing(session, actor=principal, unit_code=code)
    return Page(items=rows, total=len(rows), limit=len(rows), offset=0)


@router.delete("/{code}/robots/{robot_id}", status_code=204, summary="Stop posting to a group robot")
def delete_robot(code: str, robot_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> None:
    robot_service.delete(session, clock=clock, actor=principal, unit_code=code, robot_id=robot_id)
