"""The console's roll-call pages (查岗点名): call the roll of the posts below one's unit, and the live results.

Thin like every router: each page reads through the roll-call service, each form post is one service call; a
refusal is shown next to the form in Chinese.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app import labels
from app.errors import DomainError
from app.rollcall import service as rollcall_service
from app.rollcall import views
from app.rollcall.models import EntryState
from app.rollcall.schemas import RollCallCreate, RollCallDetail
from app.routers.deps import ClockDep, Id, SessionDep
from app.web.pages import CsrfDep, Viewer, ViewerDep, errors_of, redirect, render, status_of, unit_choices

router = APIRouter(include_in_schema=False)

MESSAGES = {"started": "已发起查岗，正在逐岗位通知。", "answered": "已确认在岗。"}
LABELS = {"states": labels.ROLLCALL_STATES, "scopes": labels.SCOPES, "channels": labels.CHANNELS}


def _form_defaults() -> dict[str, Any]:
    return {"unit_code": "", "scope": "children", "roles": ["duty_officer", "leader"], "minutes": "5", "note": ""}


def _list_context(session: SessionDep, viewer: Viewer) -> dict[str, Any]:
    rows, _ = rollcall_service.listing(
        session, actor=viewer.principal, unit=viewer.unit, since=None, until=None, limit=50, offset=0
    )
    return {
        "items": views.public_many(session, rows),
        "units": unit_choices(session, viewer),
        "labels": LABELS,
        "messages": MESSAGES,
        "active": "rollcall",
    }


@router.get("/console/rollcalls")
def rollcalls_page(request: Request, session: SessionDep, viewer: ViewerDep) -> HTMLResponse:
    ctx = {**_list_context(session, viewer), "form": _form_defaults()}
    return render(request, "rollcall/list.html", ctx, viewer=viewer)


@router.post("/console/rollcalls")
def start_rollcall(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit_code: Annotated[str, Form(max_length=12)] = "",
    scope: Annotated[str, Form(max_length=16)] = "children",
    roles: Annotated[list[str] | None, Form(max_length=2)] = None,
    minutes: Annotated[str, Form(max_length=8)] = "5",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"unit_code": unit_code, "scope": scope, "roles": roles or [], "minutes": minutes, "note": note}
    try:
        seconds: int | str = int(minutes.strip()) * 60 if minutes.strip().isdigit() else minutes
        data = RollCallCreate.model_validate(
            {
                "unit_code": unit_code.strip() or None,
                "scope": scope,
                "roles": roles or [],
                "answer_within_seconds": seconds,
                "note": note.strip(),
            }
        )
        rc = rollcall_service.start(session, clock=clock, actor=viewer.principal, data=data)
    except (DomainError, ValidationError) as exc:
        session.rollback()
        summary, fields = errors_of(exc)
        if "answer_within_seconds" in fields:
            fields["minutes"] = "应答时限须在1分钟至24小时（1440分钟）之间"
        ctx = {
            **_list_context(session, viewer),
            "form": form,
            "form_error": {"form": "rollcall", "summary": summary, "fields": fields},
        }
        return render(request, "rollcall/list.html", ctx, viewer=viewer, status_code=status_of(exc))
    return redirect(f"/console/rollcalls/{rc.id}", msg="started")


def _detail_context(session: SessionDep, clock: ClockDep, viewer: Viewer, roll_call_id: int) -> dict[str, Any]:
    rc = rollcall_service.get(session, actor=viewer.principal, roll_call_id=roll_call_id)
    detail: RollCallDetail = views.detail(session, rc)
    mine = [
        e
        for e in detail.entries
        if e.state == EntryState.pending and e.person is not None and e.person.id == viewer.person.id
    ]
    return {
        "rc": detail,
        "actors": labels.actors(session, [detail.started_by]),
        "mine": mine,
        "now": clock.now(),
        "labels": LABELS,
        "messages": MESSAGES,
        "active": "rollcall",
    }


@router.get("/console/rollcalls/{roll_call_id}")
def rollcall_page(
    roll_call_id: Id, request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> HTMLResponse:
    ctx = _detail_context(session, clock, viewer, roll_call_id)
    return render(request, "rollcall/detail.html", ctx, viewer=viewer)


@router.get("/console/rollcalls/{roll_call_id}/live")
def rollcall_fragment(
    roll_call_id: Id, request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> HTMLResponse:
    ctx = _detail_context(session, clock, viewer, roll_call_id)
    return render(request, "rollcall/_results.html", ctx, viewer=viewer)


@router.post("/console/rollcalls/{roll_call_id}/answer")
def answer_rollcall(
    _: CsrfDep, roll_call_id: Id, request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> Response:
    try:
        rollcall_service.answer(session, clock=clock, actor=viewer.principal, roll_call_id=roll_call_id, via="console")
    except DomainError as exc:
        session.rollback()
        ctx = {**_detail_context(session, clock, viewer, roll_call_id), "error": errors_of(exc)[0]}
        return render(request, "rollcall/detail.html", ctx, viewer=viewer, status_code=status_of(exc))
    return redirect(f"/console/rollcalls/{roll_call_id}", msg="answered")
