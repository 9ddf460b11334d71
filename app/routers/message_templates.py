from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request

from app.auth.principal import authorize
from app.notify import message_templates as templates_service
from app.notify.message_templates import TemplatesDocument
from app.routers.deps import ClockDep, PrincipalDep, SessionDep
from app.runtime import notify as notify_runtime

router = APIRouter(prefix="/api/v1/message-templates", tags=["rules"])


@router.get("", summary="Logical templates bound per provider (a versioned document)")
def get_templates(session: SessionDep, principal: PrincipalDep) -> TemplatesDocument:
    authorize(principal, "rules:read")
    return templates_service.current(session)


@router.put("", summary="Replace the bindings (city admins); every routed provider must bind every template")
def put_templates(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    document: dict[str, Any] = Body(
        ..., examples=[templates_service.demo_document().model_dump(mode="json", exclude_none=True)]
    ),
) -> TemplatesDocument:
    routed = notify_runtime.routed_providers(request.app.state.settings)
    # The voice bindings of Alibaba Cloud live under their own name in the document.
    providers = [p for p in routed["sms"] if p != "twilio"]
    providers += ["aliyun_voice" for p in routed["voice"] if p == "aliyun"]
    doc = templates_service.replace(session, clock=clock, actor=principal, document=document, routed=providers)
    book = getattr(request.app.state, "template_book", None)
    if book is not None:
        book.invalidate()
    return doc
