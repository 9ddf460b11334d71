from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app import audit
from app.auth.principal import authorize
from app.routers.deps import PagingDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get("", summary="The audit log of your subtree, newest first (admins)")
def list_audit(
    session: SessionDep,
    principal: PrincipalDep,
    paging: PagingDep,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=60)] = None,
) -> Page[AuditEntryPublic]:
    authorize(principal, "audit:read")
    rows, total = audit.entries(
        session,
        within_path=principal.unit_path,
        object_type=object_type,
        object_id=object_id,
        action=action,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page(
        items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )
