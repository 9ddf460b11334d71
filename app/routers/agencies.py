from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from app.auth.principal import authorize
from app.org import agencies as agency_service
from app.org.schemas import AgencyCreate, AgencyPublic
from app.routers.deps import ClockDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["agencies"])


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(min_length=1, examples=[["incidents:write", "incidents:read"]])


class ApiKeyCreated(BaseModel):
    key: str = Field(description="shown once; only its digest is stored")
    prefix: str
    agency: str
    scopes: list[str]


@router.post("/agencies", status_code=status.HTTP_201_CREATED, summary="Register an agency system")
def create_agency(data: AgencyCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> AgencyPublic:
    agency, unit = agency_service.create(session, clock=clock, actor=principal, data=data)
    return agency_service.public(agency, unit)


@router.get("/agencies", summary="Agencies")
def list_agencies(session: SessionDep, principal: PrincipalDep) -> Page[AgencyPublic]:
    authorize(principal, "agencies:read")
    rows = [agency_service.public(a, u) for a, u in agency_service.listing(session)]
    return Page(items=rows, total=len(rows), limit=len(rows), offset=0)


@router.post(
    "/agencies/{code}/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Make an API key for an agency (the key is shown once)",
)
def create_api_key(
    code: str, data: ApiKeyCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> ApiKeyCreated:
    new, agency = agency_service.create_key(session, clock=clock, actor=principal, code=code, scopes=data.scopes)
    return ApiKeyCreated(key=new.key, prefix=new.record.prefix, agency=agency.code, scopes=new.record.scopes)


@router.delete("/api-keys/{prefix}", summary="Revoke an API key by its prefix")
def revoke_api_key(prefix: str, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> dict[str, str]:
    agency_service.revoke_key(session, clock=clock, actor=principal, prefix=prefix)
    return {"prefix": prefix, "status": "revoked"}
