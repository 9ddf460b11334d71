"""Notices, warnings and instructions down the tree (通知/预警/指令), their sign-off and feedback; CAP 1.2 in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AwareDatetime

from app.notices import instructions, views, warnings
from app.notices import service as notice_service
from app.notices.cap import MAX_BYTES, TooLarge
from app.notices.models import Kind
from app.notices.schemas import (
    FeedbackCreate,
    ForwardRequest,
    InstructionCreate,
    NoticeCreate,
    NoticeDetail,
    NoticePublic,
    SignRequest,
)
from app.org import units as unit_service
from app.routers.deps import ClockDep, Id, PagingDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(tags=["notices"])


@router.post("/api/v1/notices", status_code=status.HTTP_201_CREATED, summary="Issue a notice, warning or instruction")
def issue_notice(data: NoticeCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> NoticeDetail:
    return views.detail(session, notice_service.issue(session, clock=clock, actor=principal, data=data))


@router.get("/api/v1/notices", summary="What a unit (default: yours) issued or received, newest first")
def list_notices(
    session: SessionDep,
    principal: PrincipalDep,
    paging: PagingDep,
    kind: Kind | None = None,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$")] = None,
    box: Annotated[str | None, Query(pattern=r"^(sent|inbox)$", description="sent or inbox (default: both)")] = None,
    from_: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    to: AwareDatetime | None = None,
) -> Page[NoticePublic]:
    root = unit_service.get(session, unit, field="unit") if unit else None
    rows, total = notice_service.listing(
        session, actor=principal, kind=kind, unit=root, box=box, since=from_, until=to,
        limit=paging.limit, offset=paging.offset,
    )  # fmt: skip
    return Page(items=views.public_many(session, rows), total=total, limit=paging.limit, offset=paging.offset)


@router.get("/api/v1/notices/{notice_id}", summary="One notice with every receipt of the tree below its issuer")
def get_notice(notice_id: Id, session: SessionDep, principal: PrincipalDep) -> NoticeDetail:
    return views.detail(session, notice_service.get(session, actor=principal, notice_id=notice_id))


@router.post("/api/v1/notices/{notice_id}/sign", summary="Sign for a receiving unit (签收); twice changes nothing")
def sign_notice(
    notice_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep, data: SignRequest | None = None
) -> NoticeDetail:
    body = data or SignRequest()
    notice_service.sign(session, clock=clock, actor=principal, notice_id=notice_id, unit_code=body.unit_code)
    return views.detail(session, notice_service.get(session, actor=principal, notice_id=notice_id))


@router.post("/api/v1/notices/{notice_id}/feedback", summary="Report back what was done (落实反馈)")
def feedback_notice(
    notice_id: Id, data: FeedbackCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> NoticeDetail:
    notice_service.feedback(
        session, clock=clock, actor=principal, notice_id=notice_id, text=data.text, unit_code=data.unit_code
    )
    return views.detail(session, notice_service.get(session, actor=principal, notice_id=notice_id))


@router.post("/api/v1/notices/{notice_id}/forward", summary="Forward to your own subtree (转发)")
def forward_notice(
    notice_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep, data: ForwardRequest | None = None
) -> NoticeDetail:
    body = data or ForwardRequest()
    notice_service.forward(
        session, clock=clock, actor=principal, notice_id=notice_id, unit_code=body.unit_code, to=body.to
    )
    return views.detail(session, notice_service.get(session, actor=principal, notice_id=notice_id))


@router.post(
    "/api/v1/incidents/{incident_id}/instructions",
    status_code=status.HTTP_201_CREATED,
    tags=["incidents"],
    summary="A leader's instruction (领导批示): on the timeline, and sent down to the incident's lower tiers",
)
def instruct(
    incident_id: Id, data: InstructionCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> NoticeDetail:
    notice = instructions.instruct(session, clock=clock, actor=principal, incident_id=incident_id, data=data)
    return views.detail(session, notice)


async def _capped_body(request: Request) -> bytes:
    """The raw body, read no further than the cap whatever Content-Length claims (413 past it)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BYTES:
            raise TooLarge(f"a CAP alert may be at most {MAX_BYTES} bytes")
    return bytes(raw)


CAP_BODY = {
    "content": {
        "application/cap+xml": {"schema": {"type": "string"}},
        "application/xml": {"schema": {"type": "string"}},
    },
    "required": True,
    "description": "an OASIS CAP 1.2 alert (GB/T 35965.1 profile)",
}


@router.post(
    "/api/v1/warnings/cap",
    status_code=status.HTTP_201_CREATED,
    tags=["warnings"],
    openapi_extra={"requestBody": CAP_BODY},
    responses={
        200: {"model": NoticeDetail, "description": "an Update or Cancel applied, or an identifier seen before"}
    },
    summary="Take in a CAP 1.2 alert: Alert issues a warning (201), Update amends it, Cancel withdraws it",
)
def take_cap(
    raw: Annotated[bytes, Depends(_capped_body)],
    response: Response,
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
) -> NoticeDetail:
    taken = warnings.take(session, clock=clock, actor=principal, raw=raw)
    if not taken.created:
        response.status_code = status.HTTP_200_OK
    return views.detail(session, taken.notice)
