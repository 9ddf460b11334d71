from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.principal import authorize
from app.org import units as unit_service
from app.org.models import Tier, Unit
from app.org.schemas import UnitDetail, UnitPublic
from app.routers.deps import PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1/units", tags=["units"])


def _public(unit: Unit) -> UnitPublic:
    parts = unit.path.split("/")
    return UnitPublic(
        code=unit.code, name=unit.name, tier=Tier(unit.tier), parent_code=parts[-2] if len(parts) > 1 else None
    )


@router.get("", summary="Units of a tier, below a parent (at any depth), in tree order")
def list_units(
    session: SessionDep,
    principal: PrincipalDep,
    tier: Annotated[Tier | None, Query(description="city, district or street")] = None,
    parent: Annotated[str | None, Query(pattern=r"^\d{6,12}$", description="a unit code")] = None,
) -> Page[UnitPublic]:
    authorize(principal, "units:read")
    parent_unit = unit_service.get(session, parent, field="parent") if parent else None
    rows = unit_service.listing(session, tier=tier, parent=parent_unit)
    return Page(items=[_public(u) for u in rows], total=len(rows), limit=len(rows), offset=0)


@router.get("/{code}", summary="One unit with its parent chain up to the city")
def get_unit(code: str, session: SessionDep, principal: PrincipalDep) -> UnitDetail:
    authorize(principal, "units:read")
    unit = unit_service.get(session, code)
    ancestors = unit_service.chain(session, unit)[:-1]
    return UnitDetail(
        **_public(unit).model_dump(),
        chain=[_public(u) for u in ancestors],
        children_count=unit_service.children_count(session, unit),
    )
