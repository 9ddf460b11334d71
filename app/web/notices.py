"""The console's notice pages (通知/预警/指令): the inbox of notices to sign, what one's unit sent with every
receiving unit's receipt, one notice (sign, feed back, forward), and the form to issue one.

Thin like every router: each page reads through the notice service, each form post is one service call; a refusal
is shown next to the form in Chinese.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import select

from app import labels
from app.errors import DomainError
from app.notices import service as notice_service
from app.notices import views
from app.notices.models import NoticeReceipt
from app.notices.schemas import Addressing, NoticeCreate, NoticeDetail
from app.roster.resolve import default_zone
from app.roster.timeline import wall_to_utc
from app.routers.deps import ClockDep, Id, SessionDep
from app.web.pages import CsrfDep, UnitGroups, Viewer, ViewerDep, errors_of, redirect, render, status_of, unit_choices

router = APIRouter(include_in_schema=False)

LABELS = {
    "kinds": labels.NOTICE_KINDS,
    "states": labels.RECEIPT_STATES,
    "colors": labels.SEVERITY_COLORS,
    "tiers": labels.TIERS,
    "scopes": labels.SCOPES,
    "channels": labels.CHANNELS,
    "statuses": labels.NOTICE_STATUSES,
}
MESSAGES = {
    "issued": "已下发，正在通知各接收单位值班员。",
    "signed": "已签收。",
    "fed_back": "反馈已提交。",
    "forwarded": "已转发至下级单位。",
}


def _common(clock: ClockDep, active: str) -> dict[str, Any]:
    return {"labels": LABELS, "messages": MESSAGES, "now": clock.now(), "active": active}


def _box(session: SessionDep, viewer: Viewer, box: str) -> list[Any]:
    rows, _ = notice_service.listing(
        session, actor=viewer.principal, kind=None, unit=viewer.unit, box=box, since=None, until=None,
        limit=100, offset=0,
    )  # fmt: skip
    return views.public_many(session, rows)


def _my_receipts(session: SessionDep, viewer: Viewer, ids: list[int]) -> dict[int, NoticeReceipt]:
    if not ids:
        return {}
    query = select(NoticeReceipt).where(
        NoticeReceipt.unit_id == viewer.unit.id,
        NoticeReceipt.notice_id.in_(ids),  # type: ignore[attr-defined]
    )
    return {r.notice_id: r for r in session.exec(query).all()}


@router.get("/console/notices")
def inbox_page(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    items = _box(session, viewer, "inbox")
    mine = _my_receipts(session, viewer, [n.id for n in items])
    ctx = {**_common(clock, "notices"), "items": items, "mine": mine}
    return render(request, "notices/inbox.html", ctx, viewer=viewer)


@router.get("/console/notices/sent")
def sent_page(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    ctx = {**_common(clock, "notices"), "items": _box(session, viewer, "sent")}
    return render(request, "notices/sent.html", ctx, viewer=viewer)


def _form_defaults() -> dict[str, Any]:
    return {"kind": "notice", "title": "", "body": "", "scope": "children", "tiers": [], "units": [],
            "minutes": "30", "feedback_due_at": ""}  # fmt: skip


def _recipients(session: SessionDep, viewer: Viewer) -> UnitGroups:
    """The units a notice may name: those below the viewer's unit (the issuer is never its own recipient)."""
    return [(head, [u for u in units if u.id != viewer.unit.id]) for head, units in unit_choices(session, viewer)]


@router.get("/console/notices/new")
def new_page(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    ctx = {**_common(clock, "notices"), "form": _form_defaults(), "units": _recipients(session, viewer)}
    return render(request, "notices/new.html", ctx, viewer=viewer)


def _local_instant(value: str) -> datetime | str | None:
    if not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return wall_to_utc(parsed, default_zone()) if parsed.tzinfo is None else parsed


def _minutes(value: str) -> int | str:
    text = value.strip()
    return int(text) * 60 if text.isdigit() else text


@router.post("/console/notices/new")
def issue(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    kind: Annotated[str, Form(max_length=16)] = "notice",
    title: Annotated[str, Form(max_length=400)] = "",
    body: Annotated[str, Form(max_length=10_000)] = "",
    scope: Annotated[str, Form(max_length=16)] = "",
    tiers: Annotated[list[str] | None, Form(max_length=3)] = None,
    units: Annotated[list[str] | None, Form(max_length=500)] = None,
    minutes: Annotated[str, Form(max_length=8)] = "30",
    feedback_due_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    # Picked from the list; a code typed by hand (or several, separated) is still read, and checked by the service.
    codes = [c for raw in units or [] for c in raw.replace(",", " ").replace(",", " ").split() if c][:500]
    form = {"kind": kind, "title": title, "body": body, "scope": scope, "tiers": tiers or [], "units": codes,
            "minutes": minutes, "feedback_due_at": feedback_due_at}  # fmt: skip
    try:
        data = NoticeCreate.model_validate(
            {
                "kind": kind,
                "title": title.strip(),
                "body": body.strip(),
                "to": {"scope": scope or None, "tiers": tiers or [], "units": codes},
                "sign_within_seconds": _minutes(minutes),
                "feedback_due_at": _local_instant(feedback_due_at),
            }
        )
        notice = notice_service.issue(session, clock=clock, actor=viewer.principal, data=data)
    except (DomainError, ValidationError) as exc:
        session.rollback()
        summary, fields = errors_of(exc)
        if "sign_within_seconds" in fields:
            fields["minutes"] = "签收时限须在1分钟至24小时（1440分钟）之间"
        for key in [k for k in fields if k.startswith("to")]:
            fields.setdefault("to", fields[key])
        ctx = {**_common(clock, "notices"), "form": form, "units": _recipients(session, viewer),
               "form_error": {"form": "notice", "summary": summary, "fields": fields}}  # fmt: skip
        return render(request, "notices/new.html", ctx, viewer=viewer, status_code=status_of(exc))
    return redirect(f"/console/notices/{notice.id}", msg="issued")


def _detail_context(session: SessionDep, clock: ClockDep, viewer: Viewer, notice_id: int) -> dict[str, Any]:
    notice = notice_service.get(session, actor=viewer.principal, notice_id=notice_id)
    detail: NoticeDetail = views.detail(session, notice)
    mine = next((r for r in detail.receipts if r.unit_code == viewer.unit.code), None)
    may_act = mine is not None and notice_service.may_act_for(
        session, clock=clock, person=viewer.person, actor=viewer.principal, unit=viewer.unit
    )
    actors = labels.actors(session, [detail.issued_by])
    return {**_common(clock, "notices"), "notice": detail, "mine": mine, "may_act": may_act, "actors": actors}


@router.get("/console/notices/{notice_id}")
def notice_page(
    notice_id: Id, request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> HTMLResponse:
    return render(request, "notices/detail.html", _detail_context(session, clock, viewer, notice_id), viewer=viewer)


def _refused(
    request: Request, session: SessionDep, clock: ClockDep, viewer: Viewer, notice_id: int, form: str,
    exc: DomainError | ValidationError,
) -> HTMLResponse:  # fmt: skip
    session.rollback()
    summary, fields = errors_of(exc)
    ctx = {**_detail_context(session, clock, viewer, notice_id),
           "form_error": {"form": form, "summary": summary, "fields": fields}}  # fmt: skip
    return render(request, "notices/detail.html", ctx, viewer=viewer, status_code=status_of(exc))


@router.post("/console/notices/{notice_id}/sign")
def sign(
    _: CsrfDep, notice_id: Id, request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> Response:
    try:
        notice_service.sign(
            session, clock=clock, actor=viewer.principal, notice_id=notice_id, unit_code=None, via="console"
        )
    except DomainError as exc:
        return _refused(request, session, clock, viewer, notice_id, "sign", exc)
    return redirect(f"/console/notices/{notice_id}", msg="signed")


@router.post("/console/notices/{notice_id}/feedback")
def feedback(
    _: CsrfDep,
    notice_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    text: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    try:
        if not text.strip():
            from app.errors import Invalid

            raise Invalid.field("text", "请填写落实情况")
        notice_service.feedback(
            session, clock=clock, actor=viewer.principal, notice_id=notice_id, text=text.strip()[:5000],
            unit_code=None,
        )  # fmt: skip
    except DomainError as exc:
        return _refused(request, session, clock, viewer, notice_id, "feedback", exc)
    return redirect(f"/console/notices/{notice_id}", msg="fed_back")


@router.post("/console/notices/{notice_id}/forward")
def forward(
    _: CsrfDep,
    notice_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    scope: Annotated[str, Form(max_length=16)] = "children",
) -> Response:
    try:
        to = Addressing.model_validate({"scope": scope or None})
        notice_service.forward(session, clock=clock, actor=viewer.principal, notice_id=notice_id, unit_code=None, to=to)
    except (DomainError, ValidationError) as exc:
        return _refused(request, session, clock, viewer, notice_id, "forward", exc)
    return redirect(f"/console/notices/{notice_id}", msg="forwarded")
