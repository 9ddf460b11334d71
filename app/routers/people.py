from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from app.org import people as people_service
from app.org import units as unit_service
from app.org.models import Role
from app.org.schemas import PersonCreate, PersonPublic, PersonUpdate
from app.roster import gaps as roster_gaps
from app.roster.schemas import PersonChanged
from app.routers.deps import ClockDep, Id, PagingDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1/people", tags=["people"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a person to a unit in your scope")
def create_person(data: PersonCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> PersonPublic:
    person, unit = people_service.create(session, clock=clock, actor=principal, data=data)
    return people_service.public(person, unit)


@router.get("", summary="People in your scope (or below `unit`), paginated")
def list_people(
    session: SessionDep,
    principal: PrincipalDep,
    paging: PagingDep,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$", description="subtree root")] = None,
    role: Role | None = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="name, username or phone contains")] = None,
) -> Page[PersonPublic]:
    root = unit_service.get(session, unit, field="unit") if unit else None
    rows, total = people_service.listing(
        session, actor=principal, unit=root, role=role, active=active, q=q, limit=paging.limit, offset=paging.offset
    )
    return Page(
        items=[people_service.public(p, u) for p, u in rows], total=total, limit=paging.limit, offset=paging.offset
    )


@router.get("/{person_id}", summary="One person")
def get_person(person_id: Id, session: SessionDep, principal: PrincipalDep) -> PersonPublic:
    person, unit = people_service.get(session, actor=principal, person_id=person_id)
    return people_service.public(person, unit)


@router.patch(
    "/{person_id}",
    summary="Change a person; `active: false` deactivates (people are never deleted)",
    description="Deactivating someone on the roster answers with the gaps it opens in the next 72 h "
    "(`gaps_opened`) and tells the unit's admins and duty officer at once.",
)
def update_person(
    person_id: Id, data: PersonUpdate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> PersonChanged:
    person, unit, opened = roster_gaps.update_person(
        session, clock=clock, actor=principal, person_id=person_id, data=data
    )
    return PersonChanged(**people_service.public(person, unit).model_dump(), gaps_opened=roster_gaps.public(opened))


class Unlocked(BaseModel):
    person_id: int
    username: str
    failures_cleared: int


@router.post(
    "/{person_id}/unlock",
    summary="Lift the sign-in throttle on this person's username (admins; the address throttle stays)",
)
def unlock_person(person_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> Unlocked:
    cleared = people_service.unlock(session, clock=clock, actor=principal, person_id=person_id)
    person, _ = people_service.get(session, actor=principal, person_id=person_id)
    assert person.username is not None
    return Unlocked(person_id=person_id, username=person.username, failures_cleared=cleared)
