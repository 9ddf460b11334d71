"""The duty console (HTML): sign-in, the board (who is on duty, check-in, handover) and rosters.

Thin like every router: each page reads through the same service functions as the API and each form post makes one
service call; refusals are shown next to the fields instead of as JSON.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.auth import service as auth_service
from app.db import transaction
from app.errors import DomainError, Invalid, NotFound, TooManyRequests
from app.incidents import service as incident_service
from app.org import units as unit_service
from app.roster import gaps as gaps_made
from app.roster import imports, practice
from app.roster import service as roster_service
from app.roster import views as roster_views
from app.roster.models import DUTY_ROLES
from app.roster.resolve import default_zone, zone_of
from app.roster.schemas import CheckInRequest, HandoverRequest, OverrideCreate
from app.roster.timeline import wall_to_utc
from app.routers.deps import ClockDep, Id, SessionDep, SettingsDep
from app.web import session as web_session
from app.web.console_incidents import LABELS as INCIDENT_LABELS
from app.web.console_incidents import open_incidents
from app.web.pages import CsrfDep, Viewer, ViewerDep, errors_of, redirect, render, status_of, unit_choices

router = APIRouter(include_in_schema=False)

UnitParam = Annotated[str | None, Query(pattern=r"^\d{6,12}$")]
MESSAGES = {
    "checked_in": "已签到。",
    "handed_over": "交接班记录已保存。",
    "override_added": "替班已保存。",
    "override_cancelled": "替班已撤销。",
    "acknowledged": "已签收。",
    "signed_out": "已退出。",
}


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get("/console")
def console_home() -> RedirectResponse:
    return RedirectResponse("/console/board", status_code=303)


# --- sign-in -----------------------------------------------------------------------------------------------------


def _safe_next(path: str | None) -> str:
    # Only our own pages: "//evil.example" and absolute URLs would make this an open redirect.
    if path and path.startswith("/console") and not path.startswith("//"):
        return path
    return "/console/board"


def _login_page(
    request: Request, clock: ClockDep, *, next_path: str, error: str | None, username: str = "", status_code: int = 200
) -> HTMLResponse:
    cookie, token = web_session.new_login_token(secret=request.app.state.secret_key, clock=clock)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "next": next_path, "error": error, "username": username},
        status_code=status_code,
    )
    _set_cookie(request, response, web_session.LOGIN_COOKIE, cookie, web_session.LOGIN_TTL)
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, ttl: timedelta) -> None:
    secure = request.app.state.settings.public_base_url.startswith("https://")
    response.set_cookie(
        name, value, max_age=int(ttl.total_seconds()), path="/", httponly=True, samesite="lax", secure=secure
    )


@router.get("/console/login")
def login_form(request: Request, clock: ClockDep, next: str | None = None) -> HTMLResponse:
    return _login_page(request, clock, next_path=_safe_next(next), error=None)


@router.post("/console/login")
def login(
    request: Request,
    clock: ClockDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    expected = web_session.read_login_token(
        request.cookies.get(web_session.LOGIN_COOKIE), secret=request.app.state.secret_key, clock=clock
    )
    if not web_session.tokens_match(expected, csrf):
        return render(
            request,
            "error.html",
            {"title": "请求被拒绝", "message": "登录表单已过期或缺少安全校验（CSRF），请重新打开登录页。"},
            status_code=403,
        )
    next_path = _safe_next(next)
    client_ip = request.client.host if request.client else "unknown"
    try:
        # Its own transaction, as in the API: a failed attempt is recorded even though the answer is a refusal.
        with transaction(request.app.state.engine) as session:
            person = auth_service.sign_in(
                session,
                clock=clock,
                username=username,
                password=password,
                client_ip=client_ip,
                max_failures=settings.login_max_failures,
                window_seconds=settings.login_window_seconds,
            )
    except TooManyRequests:
        return _login_page(
            request, clock, next_path=next_path, error="失败次数过多，请稍后再试。", username=username, status_code=429
        )
    if person is None or person.id is None:
        return _login_page(
            request, clock, next_path=next_path, error="用户名或密码错误。", username=username, status_code=401
        )
    value, _ = web_session.new_session(person.id, secret=request.app.state.secret_key, clock=clock)
    response = redirect(next_path)
    _set_cookie(request, response, web_session.SESSION_COOKIE, value, web_session.SESSION_TTL)
    response.delete_cookie(web_session.LOGIN_COOKIE, path="/")
    return response


@router.post("/console/logout")
def logout(_: CsrfDep) -> Response:
    response = redirect("/console/login", msg="signed_out")
    response.delete_cookie(web_session.SESSION_COOKIE, path="/")
    return response


# --- the board ---------------------------------------------------------------------------------------------------


# Open incidents the handover form offers to carry to the next shift (ticked by default).
HANDOVER_INCIDENTS = 30
# How an incident carried in a handover is written among the open items: "事件 K7QZ 医院住院部起火".
CARRIED_PREFIX = "事件 "
_CARRIED = re.compile(r"^事件 ([A-Z0-9]{4,8}) ")


def carried_code(item: str) -> str | None:
    """The incident code an open item carries, if it was written from the handover form's incident list."""
    match = _CARRIED.match(item)
    return match.group(1) if match else None


def _board_context(session: SessionDep, clock: ClockDep, viewer: Viewer, unit_code: str | None) -> dict[str, Any]:
    at = clock.now()
    duty = roster_views.duty_board(
        session, actor=viewer.principal, person=viewer.person, unit_code=unit_code or viewer.unit.code, at=at
    )
    # Roles without incident access (a hazard inspector) still have a board, without the incidents.
    reads_incidents = viewer.principal.can("incidents:read")
    items = open_incidents(session, clock, viewer) if reads_incidents else []
    codes = [c for h in duty.handovers for item in h.open_items if (c := carried_code(item)) is not None]
    return {
        "duty": duty,
        "at": at,
        "focus": duty.focus,
        "waiting": [item for item in items if item["ack_tier"] is not None],
        "open_items": items[:HANDOVER_INCIDENTS],
        "carried": incident_service.ids_by_code(session, actor=viewer.principal, codes=codes)
        if reads_incidents
        else {},
        "reads_incidents": reads_incidents,
        "carried_code": carried_code,
        "may_check_in": viewer.principal.can("shifts:write"),
        "choices": unit_choices(session, viewer, include_above=True),
        "labels": INCIDENT_LABELS,
        "now": at,
        "messages": MESSAGES,
    }


@router.get("/console/board")
def board_page(
    request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep, unit: UnitParam = None
) -> HTMLResponse:
    ctx = _board_context(session, clock, viewer, unit)
    return render(request, "board.html", ctx, viewer=viewer)


@router.get("/console/board/live")
def board_fragment(
    request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep, unit: UnitParam = None
) -> HTMLResponse:
    """The board's changing part, re-fetched by console.js every few seconds (the handover form stays put)."""
    ctx = _board_context(session, clock, viewer, unit)
    return render(request, "_board_live.html", ctx, viewer=viewer)


def _board_refusal(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: Viewer,
    exc: DomainError | ValidationError,
    form: str,
    values: dict[str, Any] | None = None,
) -> HTMLResponse:
    session.rollback()  # nothing of a refused act may be committed by the request's transaction
    summary, fields = errors_of(exc)
    ctx = _board_context(session, clock, viewer, None)
    return render(
        request,
        "board.html",
        # What was typed comes back in the form (`values`), so a refusal costs nobody their notes.
        {**ctx, "form": values or {}, "form_error": {"form": form, "summary": summary, "fields": fields}},
        viewer=viewer,
        status_code=status_of(exc),
    )


@router.post("/console/check-in")
def check_in(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit_code: Annotated[str, Form(max_length=12)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    try:
        data = CheckInRequest.model_validate({"unit_code": unit_code or None, "role": role or None})
        practice.check_in(session, clock=clock, actor=viewer.principal, data=data)
    except (DomainError, ValidationError) as exc:
        return _board_refusal(request, session, clock, viewer, exc, "check_in")
    return redirect("/console/board", msg="checked_in")


def _carried_items(session: SessionDep, viewer: Viewer, ids: list[str]) -> list[str]:
    """The ticked open incidents as open items ("事件 K7QZ 标题"); each must be one the viewer may read."""
    items = []
    for raw in ids:
        if not raw.isdigit() or not 0 < int(raw) < 2**31:
            raise Invalid.field("incidents", f"not an incident id: {raw!r}")
        inc = incident_service.get(session, actor=viewer.principal, incident_id=int(raw))
        items.append(f"{CARRIED_PREFIX}{inc.code} {inc.title}"[:500])
    return items


@router.post("/console/handover")
def handover(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    notes: Annotated[str, Form(max_length=10_000)] = "",
    open_items: Annotated[str, Form(max_length=50_000)] = "",
    incoming: Annotated[str, Form(max_length=64)] = "",
    incidents: Annotated[list[str] | None, Form(max_length=HANDOVER_INCIDENTS)] = None,
) -> Response:
    values = {"notes": notes, "open_items": open_items, "incoming": incoming, "incidents": incidents or []}
    try:
        carried = _carried_items(session, viewer, incidents or [])
        data = HandoverRequest.model_validate(
            {
                "notes": notes,
                "open_items": carried + [line.strip() for line in open_items.splitlines() if line.strip()],
                "incoming": incoming.strip() or None,
            }
        )
        practice.handover(session, clock=clock, actor=viewer.principal, data=data)
    except NotFound as exc:
        refusal = Invalid.field("incidents", exc.message)
        return _board_refusal(request, session, clock, viewer, refusal, "handover", values)
    except (DomainError, ValidationError) as exc:
        return _board_refusal(request, session, clock, viewer, exc, "handover", values)
    return redirect("/console/board", msg="handed_over")


# --- rosters -----------------------------------------------------------------------------------------------------


def _rosters_context(
    session: SessionDep, clock: ClockDep, viewer: Viewer, unit_code: str | None, month: str | None
) -> dict[str, Any]:
    actor = viewer.principal
    grid = roster_views.month_grid(
        session, actor=actor, unit_code=unit_code or viewer.unit.code, month=month, now=clock.now()
    )
    return {
        "grid": grid,
        "unit": grid.unit,
        "roles": DUTY_ROLES,
        "choices": unit_choices(session, viewer, include_above=True),
        "may_write": actor.can("rosters:write") and actor.covers(grid.unit),
    }


@router.get("/console/rosters")
def rosters_page(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit: UnitParam = None,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> HTMLResponse:
    ctx = _rosters_context(session, clock, viewer, unit, month)
    return render(request, "rosters.html", {**ctx, "messages": MESSAGES, "form": {}}, viewer=viewer)


def _rosters_refusal(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: Viewer,
    exc: DomainError | ValidationError,
    *,
    form: str,
    unit_code: str,
    values: dict[str, str],
) -> HTMLResponse:
    session.rollback()
    summary, fields = errors_of(exc)
    code = unit_code if unit_code and unit_code.isdigit() else None
    try:
        ctx = _rosters_context(session, clock, viewer, code, None)
    except DomainError:
        ctx = _rosters_context(session, clock, viewer, None, None)
    return render(
        request,
        "rosters.html",
        {
            **ctx,
            "messages": MESSAGES,
            "form": values,
            "form_error": {"form": form, "summary": summary, "fields": fields},
        },
        viewer=viewer,
        status_code=status_of(exc),
    )


def _local_input(value: str, zone: ZoneInfo) -> datetime | str:
    """A datetime-local value ("2026-04-18T12:00") read in the unit's zone; anything else is left to Pydantic."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return wall_to_utc(parsed, zone)
    return parsed


def _zone_for(session: SessionDep, unit_code: str) -> ZoneInfo:
    # An unknown or malformed code is refused by the service with its field named; until then, the default zone.
    found = unit_service.by_codes(session, [unit_code]) if unit_code.isdigit() else []
    return zone_of(found[0]) if found else default_zone()


@router.post("/console/overrides")
def add_override(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit_code: Annotated[str, Form(max_length=12)] = "",
    role: Annotated[str, Form(max_length=16)] = "",
    person: Annotated[str, Form(max_length=64)] = "",
    starts_at: Annotated[str, Form(max_length=40)] = "",
    ends_at: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    values = {"role": role, "person": person, "starts_at": starts_at, "ends_at": ends_at, "reason": reason}
    try:
        zone = _zone_for(session, unit_code)
        data = OverrideCreate.model_validate(
            {
                "unit_code": unit_code,
                "role": role,
                "person": person.strip(),
                "starts_at": _local_input(starts_at, zone),
                "ends_at": _local_input(ends_at, zone),
                "reason": reason,
            }
        )
        roster_service.create_override(session, clock=clock, actor=viewer.principal, data=data)
    except (DomainError, ValidationError) as exc:
        return _rosters_refusal(
            request, session, clock, viewer, exc, form="override", unit_code=unit_code, values=values
        )
    month = data.starts_at.astimezone(zone).strftime("%Y-%m")
    return redirect(f"/console/rosters?unit={data.unit_code}&month={month}", msg="override_added")


@router.post("/console/overrides/{override_id}/cancel")
def cancel_override(
    _: CsrfDep,
    override_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit_code: Annotated[str, Form(max_length=12)] = "",
    confirm: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    try:
        if confirm != "yes":
            # Gaps are shown before they are made: the same change, rolled back, says what it would open.
            opened = gaps_made.preview_cancel_override(
                session, clock=clock, actor=viewer.principal, override_id=override_id
            )
            if opened:
                context = {"title": "撤销替班", "verb": "撤销", "gaps": opened, "unit_code": unit_code,
                           "action": f"/console/overrides/{override_id}/cancel",
                           "back": f"/console/rosters?unit={unit_code}"}  # fmt: skip
                return render(request, "confirm_gaps.html", context, viewer=viewer)
        gaps_made.cancel_override(session, clock=clock, actor=viewer.principal, override_id=override_id)
    except DomainError as exc:
        return _rosters_refusal(request, session, clock, viewer, exc, form="cancel", unit_code=unit_code, values={})
    return redirect(f"/console/rosters?unit={unit_code}", msg="override_cancelled")


@router.post("/console/rosters/import")
def import_roster_page(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    file: Annotated[UploadFile | None, File()] = None,
    unit_code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        raw = file.file.read() if file is not None else b""
        if not raw:
            raise Invalid.field("file", "选择一个 CSV 文件")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise Invalid.field("file", "the CSV must be UTF-8") from exc
        result = imports.import_csv(session, clock=clock, actor=viewer.principal, text=text, handoff=time(8, 30))
    except DomainError as exc:
        return _rosters_refusal(request, session, clock, viewer, exc, form="import", unit_code=unit_code, values={})
    code = unit_code if unit_code.isdigit() else None
    ctx = _rosters_context(session, clock, viewer, code, None)
    return render(request, "rosters.html", {**ctx, "messages": MESSAGES, "form": {}, "imported": result}, viewer=viewer)


@router.get("/console/rosters/export")
def export_roster_page(
    session: SessionDep,
    viewer: ViewerDep,
    unit: Annotated[str, Query(pattern=r"^\d{6,12}$")],
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
) -> Response:
    body = imports.export_csv(session, actor=viewer.principal, unit_code=unit, month=month)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="roster-{unit}-{month}.csv"'},
    )
