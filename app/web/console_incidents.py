"""The duty console's incident pages: the live list, one incident (timeline, reports, acknowledge, escalate,
resolve, close), report entry (接报) and the Twilio simulator's inbox.

The list and the incident's state are re-fetched as HTML fragments every few seconds by console.js, so new
incidents and changes appear without reloading and the markup is rendered in one place. Every act is one call to
the same service function the API uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app import labels
from app.errors import DomainError, NotFound
from app.incidents import lifecycle, views, worklist
from app.incidents import service as incident_service
from app.incidents.categories import CATEGORIES
from app.incidents.models import OPEN_STATUSES
from app.incidents.schemas import IncidentCreate, IncidentPublic, Reason, ReportCreate
from app.notify import outbox
from app.org.models import Role
from app.roster.resolve import default_zone
from app.roster.timeline import wall_to_utc
from app.routers.deps import ClockDep, Id, SessionDep, SettingsDep
from app.web.pages import CsrfDep, Viewer, ViewerDep, error_page, errors_of, redirect, render, status_of, unit_choices

router = APIRouter(include_in_schema=False)

LABELS = {
    "categories": labels.CATEGORIES,
    "statuses": labels.INCIDENT_STATUSES,
    "report_kinds": labels.REPORT_KINDS,
    "timeline_kinds": labels.TIMELINE_KINDS,
    "severities": labels.SEVERITIES,
}
MESSAGES = {
    "acknowledged": "已签收。",
    "reported": "报告已提交。",
    "escalated": "已上报上一级。",
    "resolved": "已标记处置完毕。",
    "closed": "事件已关闭。",
    "created": "事件已登记，正在通知各级值班人员。",
}
LIST_LIMIT = 200


def open_incidents(session: SessionDep, clock: ClockDep, viewer: Viewer) -> list[dict[str, Any]]:
    """Open incidents in the viewer's scope, gravest first and then oldest first, with the tier they may ack."""
    items = worklist.open_incidents(session, clock=clock, actor=viewer.principal, limit=LIST_LIMIT)
    public = views.public_many(session, [item.incident for item in items])
    return [{"inc": p, "ack_tier": item.ack_tier} for item, p in zip(items, public, strict=True)]


def _next_step(inc: IncidentPublic) -> datetime | None:
    pending = [t.next_step_at for t in inc.tiers if t.next_step_at is not None and t.acknowledged_at is None]
    return min(pending) if pending else None


def _common(clock: ClockDep) -> dict[str, Any]:
    return {"labels": LABELS, "now": clock.now(), "next_step": _next_step, "messages": MESSAGES}


@router.get("/console/incidents")
def incidents_page(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    items = open_incidents(session, clock, viewer)
    return render(request, "incidents.html", {**_common(clock), "items": items, "active": "incidents"}, viewer=viewer)


@router.get("/console/incidents/live")
def incidents_fragment(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    items = open_incidents(session, clock, viewer)
    return render(request, "_incident_list.html", {**_common(clock), "items": items}, viewer=viewer)


# --- report entry (接报) ------------------------------------------------------------------------------------------


def _int_or_raw(value: str) -> int | str:
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _intake_form_defaults(viewer: Viewer, clock: ClockDep) -> dict[str, str]:
    return {
        "category": "fire",
        "unit_code": viewer.unit.code,
        "occurred_at": clock.now().astimezone(default_zone()).strftime("%Y-%m-%dT%H:%M"),
        "deaths": "0",
        "injuries": "0",
        "trapped": "0",
        "missing": "0",
        "economic_loss_cny": "0",
    }


@router.get("/console/incidents/new")
def intake_page(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    ctx = {
        **_common(clock),
        "form": _intake_form_defaults(viewer, clock),
        "categories": CATEGORIES,
        "units": unit_choices(session, viewer),
        "active": "new",
    }
    return render(request, "intake.html", ctx, viewer=viewer)


@router.post("/console/incidents/new")
def intake(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    category: Annotated[str, Form(max_length=32)] = "",
    title: Annotated[str, Form(max_length=400)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
    unit_code: Annotated[str, Form(max_length=12)] = "",
    address: Annotated[str, Form(max_length=600)] = "",
    occurred_at: Annotated[str, Form(max_length=40)] = "",
    severity: Annotated[str, Form(max_length=4)] = "",
    deaths: Annotated[str, Form(max_length=12)] = "0",
    injuries: Annotated[str, Form(max_length=12)] = "0",
    trapped: Annotated[str, Form(max_length=12)] = "0",
    missing: Annotated[str, Form(max_length=12)] = "0",
    economic_loss_cny: Annotated[str, Form(max_length=24)] = "0",
    sensitive: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    form = {
        "category": category,
        "title": title,
        "description": description,
        "unit_code": unit_code,
        "address": address,
        "occurred_at": occurred_at,
        "severity": severity,
        "deaths": deaths,
        "injuries": injuries,
        "trapped": trapped,
        "missing": missing,
        "economic_loss_cny": economic_loss_cny,
        "sensitive": sensitive,
    }
    try:
        data = IncidentCreate.model_validate(
            {
                "category": category,
                "title": title.strip(),
                "description": description,
                "unit_code": unit_code.strip(),
                "address": address,
                "occurred_at": _local_instant(occurred_at),
                "severity": severity or None,
                "casualties": {
                    "deaths": _int_or_raw(deaths or "0"),
                    "injuries": _int_or_raw(injuries or "0"),
                    "trapped": _int_or_raw(trapped or "0"),
                    "missing": _int_or_raw(missing or "0"),
                },
                "economic_loss_cny": economic_loss_cny.strip() or "0",
                "sensitive": bool(sensitive),
            }
        )
        inc = incident_service.report(session, clock=clock, actor=viewer.principal, data=data).incident
    except (DomainError, ValidationError) as exc:
        session.rollback()
        summary, fields = errors_of(exc)
        ctx = {
            **_common(clock),
            "form": form,
            "categories": CATEGORIES,
            "units": unit_choices(session, viewer),
            "active": "new",
            "form_error": {"form": "intake", "summary": summary, "fields": fields},
        }
        return render(request, "intake.html", ctx, viewer=viewer, status_code=status_of(exc))
    return redirect(f"/console/incidents/{inc.id}", msg="created")


def _local_instant(value: str) -> datetime | str:
    """A datetime-local value read in the configured zone; anything else is left to Pydantic to refuse."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return wall_to_utc(parsed, default_zone()) if parsed.tzinfo is None else parsed


# --- one incident --------------------------------------------------------------------------------------------------


# The timeline reads oldest first (a report as it unfolded) or newest first (what just happened), by the query string.
OrderParam = Annotated[Literal["oldest", "newest"], Query()]
# The page's forms carry the viewer's order in a hidden field, so that the redirect after a post keeps it.
OrderField = Annotated[str, Form(max_length=8)]


def _page(incident_id: Id, order: str) -> str:
    """The incident's page in the order the viewer reads its timeline (oldest first unless they chose newest)."""
    return f"/console/incidents/{incident_id}" + ("?order=newest" if order == "newest" else "")


def _detail_context(
    session: SessionDep, clock: ClockDep, viewer: Viewer, incident_id: Id, order: str = "oldest"
) -> dict[str, Any]:
    inc = incident_service.get(session, actor=viewer.principal, incident_id=incident_id)
    assert inc.id is not None
    detail = views.detail(session, inc)
    named = [t.actor for t in detail.timeline] + [r.author for r in detail.reports] + [detail.source]
    return {
        **_common(clock),
        "inc": detail,
        "timeline": detail.timeline[::-1] if order == "newest" else detail.timeline,
        "order": order,
        "actors": labels.actors(session, named),
        "ack_tier": lifecycle.ack_tier_for(session, clock=clock, actor=viewer.principal, inc=inc),
        "notifications": outbox.for_incident(session, inc.id),
        "is_open": inc.status in OPEN_STATUSES,
        "active": "incidents",
    }


@router.get("/console/incidents/{incident_id}")
def incident_page(
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    order: OrderParam = "oldest",
) -> HTMLResponse:
    ctx = _detail_context(session, clock, viewer, incident_id, order)
    return render(request, "incident.html", {**ctx, "form": {}}, viewer=viewer)


@router.get("/console/incidents/{incident_id}/live")
def incident_fragment(
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    order: OrderParam = "oldest",
) -> HTMLResponse:
    ctx = _detail_context(session, clock, viewer, incident_id, order)
    return render(request, "_incident_state.html", ctx, viewer=viewer)


def _incident_refusal(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: Viewer,
    incident_id: Id,
    exc: DomainError | ValidationError,
    *,
    form: str,
    values: dict[str, str],
    order: str = "oldest",
) -> HTMLResponse:
    session.rollback()  # nothing of a refused act may be committed by the request's transaction
    if isinstance(exc, NotFound):
        return error_page(request, 404, exc)
    summary, fields = errors_of(exc)
    ctx = _detail_context(session, clock, viewer, incident_id, "newest" if order == "newest" else "oldest")
    ctx |= {"form": values, "form_error": {"form": form, "summary": summary, "fields": fields}}
    return render(request, "incident.html", ctx, viewer=viewer, status_code=status_of(exc))


def _back(value: str, incident_id: Id, order: str) -> str:
    if value == "list":
        return "/console/incidents"
    if value == "board":
        return "/console/board"
    return _page(incident_id, order)


@router.post("/console/incidents/{incident_id}/ack")
def acknowledge(
    _: CsrfDep,
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    back: Annotated[str, Form(max_length=8)] = "",
    order: OrderField = "",
) -> Response:
    try:
        lifecycle.acknowledge(session, clock=clock, actor=viewer.principal, incident_id=incident_id, via="console")
    except DomainError as exc:
        return _incident_refusal(request, session, clock, viewer, incident_id, exc, form="ack", values={}, order=order)
    return redirect(_back(back, incident_id, order), msg="acknowledged")


@router.post("/console/incidents/{incident_id}/reports")
def add_report(
    _: CsrfDep,
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    kind: Annotated[str, Form(max_length=16)] = "",
    text: Annotated[str, Form(max_length=20_000)] = "",
    deaths: Annotated[str, Form(max_length=12)] = "",
    injuries: Annotated[str, Form(max_length=12)] = "",
    trapped: Annotated[str, Form(max_length=12)] = "",
    missing: Annotated[str, Form(max_length=12)] = "",
    economic_loss_cny: Annotated[str, Form(max_length=24)] = "",
    order: OrderField = "",
) -> Response:
    figures = {"deaths": deaths, "injuries": injuries, "trapped": trapped, "missing": missing}
    values = {"kind": kind, "text": text, **figures, "economic_loss_cny": economic_loss_cny}
    try:
        body: dict[str, Any] = {"kind": kind, "text": text.strip()}
        if given := {k: _int_or_raw(v) for k, v in figures.items() if v.strip()}:
            body["casualties"] = given  # a blank box keeps the current figure: the service keeps what is left out
        if economic_loss_cny.strip():
            body["economic_loss_cny"] = economic_loss_cny.strip()
        data = ReportCreate.model_validate(body)
        incident_service.add_report(session, clock=clock, actor=viewer.principal, incident_id=incident_id, data=data)
    except (DomainError, ValidationError) as exc:
        return _incident_refusal(
            request, session, clock, viewer, incident_id, exc, form="report", values=values, order=order
        )
    return redirect(_page(incident_id, order), msg="reported")


def _lifecycle_post(
    act: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: Viewer,
    incident_id: Id,
    reason: str,
    order: str,
) -> Response:
    try:
        data = Reason.model_validate({"reason": reason.strip()})
        call = {"escalate": lifecycle.escalate, "resolve": lifecycle.resolve, "close": lifecycle.close}[act]
        call(session, clock=clock, actor=viewer.principal, incident_id=incident_id, reason=data.reason)
    except (DomainError, ValidationError) as exc:
        return _incident_refusal(
            request, session, clock, viewer, incident_id, exc, form=act, values={"reason": reason}, order=order
        )
    return redirect(_page(incident_id, order), msg={"escalate": "escalated"}.get(act, act + "d"))


@router.post("/console/incidents/{incident_id}/escalate")
def escalate(
    _: CsrfDep,
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
    order: OrderField = "",
) -> Response:
    return _lifecycle_post("escalate", request, session, clock, viewer, incident_id, reason, order)


@router.post("/console/incidents/{incident_id}/resolve")
def resolve(
    _: CsrfDep,
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
    order: OrderField = "",
) -> Response:
    return _lifecycle_post("resolve", request, session, clock, viewer, incident_id, reason, order)


@router.post("/console/incidents/{incident_id}/close")
def close(
    _: CsrfDep,
    incident_id: Id,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
    order: OrderField = "",
) -> Response:
    return _lifecycle_post("close", request, session, clock, viewer, incident_id, reason, order)


# --- the simulator's inbox ----------------------------------------------------------------------------------------


@router.get("/console/simulator")
def simulator_inbox(request: Request, settings: SettingsDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    if not settings.simulator_enabled:
        return render(
            request,
            "error.html",
            {"title": "短信模拟器未启用", "message": "模拟器收件箱仅在演示模式下可用（DUTYLINE_SIMULATOR=on）。"},
            viewer=viewer,
            status_code=404,
        )
    if Role.admin not in viewer.principal.roles:
        # The inbox shows every page sent to anyone: for admins only (the /sim API refuses others too).
        return render(
            request,
            "error.html",
            {"title": "无权查看", "message": "短信模拟器收件箱仅限系统管理员查看。"},
            viewer=viewer,
            status_code=403,
        )
    context = {**_common(clock), "active": "simulator", "providers": labels.PROVIDERS}
    return render(request, "simulator.html", context, viewer=viewer)
