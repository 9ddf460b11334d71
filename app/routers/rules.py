from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from app.auth.principal import authorize
from app.escalation.rules import schemas as rules_schemas
from app.escalation.rules import service as rules_service
from app.escalation.rules.schemas import RulesDocument
from app.routers.deps import ClockDep, PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1/response-rules", tags=["rules"])


@router.get("", summary="The graded-response rules in force (a versioned document)")
def get_rules(session: SessionDep, principal: PrincipalDep) -> RulesDocument:
    authorize(principal, "rules:read")
    return rules_service.current(session)


@router.put("", summary="Replace the rules (city admins); PUT takes back what GET returns")
def put_rules(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    document: dict[str, Any] = Body(..., examples=[rules_schemas.default_document().model_dump(mode="json")]),
) -> RulesDocument:
    return rules_service.replace(session, clock=clock, actor=principal, document=document)
