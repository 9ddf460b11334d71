"""The console's hazard pages (隐患排查整治): the register with filters and statistics, one hazard (timeline, plan,
photos, the actions the viewer may take), and a report form made for a phone in the field.

Thin like the API: each page reads through the same service functions, each form post makes one service call, and a
refusal is shown in Chinese next to its field with nothing written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from app import labels
from app.errors import DomainError, Invalid
from app.hazards import categories, lifecycle, lists, photos, stats, views
from app.hazards import service as hazard_service
from app.hazards.errors import ACTION_NAMES, ROLE_NAMES, STATUS_NAMES, RoleRefused, StateRefused
from app.hazards.models import Level, Status
from app.hazards.schemas import ExtensionRequest, HazardCreate, ListingRequest, PlanCreate, SubmitRequest, VerifyRequest
from app.org import units as unit_service
from app.roster.resolve import default_zone
from app.roster.timeline import wall_to_utc
from app.routers.deps import ClockDep, Id, SessionDep
from app.routers.hazards import MAX_IMPORT_BYTES, photo_store
from app.web import errors as web_errors
from app.web.pages import CsrfDep, Viewer, ViewerDep, redirect, render, unit_choices

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
LEVEL_NAMES = labels.HAZARD_LEVELS
SOURCE_NAMES = labels.HAZARD_SOURCES
TIER_NAMES = {t: labels.TIER_LEVELS[t] for t in ("district", "city")}
KIND_NAMES = labels.HAZARD_TIMELINE_KINDS
FIELD_NAMES = labels.HAZARD_FIELDS


def _reason(message: str) -> str:
    return web_errors.translate(message) or "填写有误"


def refusal(exc: DomainError | ValidationError) -> tuple[str, dict[str, str]]:
    """A refusal in Chinese (app.web.errors): a summary and field → reason, fields keyed as the form names them;
    an import's rows as "第3行 场所类别:…"."""
    if isinstance(exc, StateRefused | RoleRefused):
        return exc.zh or web_errors.message(exc), {}
    fields: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            fields.setdefault(loc[0] if loc else "form", web_errors.pydantic_reason(err))
    else:
        for f in exc.fields:
            text = f.zh or _reason(f.message)
            if f.field.startswith("rows["):
                name = f.field.split(".")[-1]
                row = f.field.split("]")[0].removeprefix("rows[")
                fields[f.field] = f"第{row}行 {FIELD_NAMES.get(name, name)}：{text}"
            else:
                fields.setdefault(f.field, text)
        if not exc.fields:
            if exc.status == 404:
                return "未找到该隐患（或不在您的管辖范围内）", {}
            if exc.status == 403:
                return "超出您的权限或管辖范围", {}
            return web_errors.message(exc), {}
    listed = "；".join(f"{FIELD_NAMES.get(k, k) if not k.startswith('rows[') else ''}{v}" for k, v in fields.items())
    return f"请检查：{listed}"[:600], fields


def status_code_of(exc: DomainError | ValidationError) -> int:
    return exc.status if isinstance(exc, DomainError) else 422


def _labels() -> dict[str, Any]:
    return {
        "levels": LEVEL_NAMES,
        "sources": SOURCE_NAMES,
        "statuses": STATUS_NAMES,
        "kinds": KIND_NAMES,
        "tiers": TIER_NAMES,
        "actions": ACTION_NAMES,
        "roles": ROLE_NAMES,
        "fields": FIELD_NAMES,
        "categories": categories.current(),
    }


MESSAGES = {
    "created": "隐患已登记。",
    "plan": "整改方案已保存，隐患进入整改。",
    "submitted": "已提交整改，等待验收。",
    "closed": "验收通过，已销号。",
    "verify_failed": "验收未通过，已退回整改。",
    "extension": "已批准延期。",
    "listed": "已挂牌督办。",
    "photo": "照片已上传。",
}


def _filters(session: Session, form: dict[str, str]) -> hazard_service.Filters:
    unit = unit_service.get(session, form["unit"], field="unit") if form.get("unit") else None
    overdue = {"yes": True, "no": False}.get(form.get("overdue", ""))
    return hazard_service.Filters(
        unit=unit,
        status=Status(form["status"]) if form.get("status") in Status.__members__ else None,
        level=Level(form["level"]) if form.get("level") in Level.__members__ else None,
        category=form.get("category") or None,
        overdue=overdue,
    )


@router.get("/console/hazards")
def register_page(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit: Annotated[str, Query(max_length=12, pattern=r"^(\d{6,12})?$")] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    level: Annotated[str, Query(max_length=16)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    overdue: Annotated[str, Query(max_length=4)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    form = {"unit": unit, "status": status, "level": level, "category": category, "overdue": overdue}
    error = None
    try:
        filters = _filters(session, form)
        rows, total = hazard_service.listing(
            session,
            clock=clock,
            actor=viewer.principal,
            filters=filters,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            overdue_first=True,
        )
        summary = stats.per_child(session, clock=clock, actor=viewer.principal, unit=filters.unit)
    except DomainError as exc:
        session.rollback()
        error = refusal(exc)[0]
        rows, total, summary = [], 0, None
    query = "&".join(f"{k}={v}" for k, v in form.items() if v)
    ctx = {
        "labels": _labels(),
        "form": form,
        "items": views.public_many(session, rows, clock.now()),
        "total": total,
        "page": page,
        "pages": max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        "stats": summary,
        "query": query,
        "error": error,
        "may_write": viewer.principal.can("hazards:write"),
        "units": unit_choices(session, viewer),
        "active": "hazards",
        "messages": MESSAGES,
    }
    return render(request, "hazards/register.html", ctx, viewer=viewer, status_code=422 if error else 200)


@router.get("/console/hazards/export")
def export_page(
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit: Annotated[str, Query(max_length=12, pattern=r"^(\d{6,12})?$")] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    level: Annotated[str, Query(max_length=16)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    overdue: Annotated[str, Query(max_length=4)] = "",
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "xlsx",
) -> Response:
    filters = _filters(
        session, {"unit": unit, "status": status, "level": level, "category": category, "overdue": overdue}
    )
    name = f"hazards-{unit or viewer.unit.code}"
    if format == "csv":
        text = lists.export_csv(session, clock=clock, actor=viewer.principal, filters=filters)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip
    body = lists.export_xlsx(session, clock=clock, actor=viewer.principal, filters=filters)
    return Response(body, media_type=lists.XLSX_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})  # fmt: skip


@router.post("/console/hazards/import")
def import_page(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    try:
        raw = file.file.read(MAX_IMPORT_BYTES + 1) if file is not None else b""
        if len(raw) > MAX_IMPORT_BYTES:
            raise Invalid.field("file", f"at most {MAX_IMPORT_BYTES} bytes")
        result = lists.import_file(session, clock=clock, actor=viewer.principal, raw=raw)
    except DomainError as exc:
        session.rollback()
        summary, fields = refusal(exc)
        rows = [v for k, v in fields.items() if k.startswith("rows[")]
        ctx: dict[str, Any] = {"labels": _labels(), "summary": summary, "rows": rows[:100], "active": "hazards"}
        return render(request, "hazards/import_result.html", ctx, viewer=viewer, status_code=status_code_of(exc))
    ctx = {"labels": _labels(), "result": result, "active": "hazards"}
    return render(request, "hazards/import_result.html", ctx, viewer=viewer)


# --- the report form (phone first) -------------------------------------------------------------------------------


def _local_datetime(value: str) -> datetime | str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return wall_to_utc(parsed, default_zone()) if parsed.tzinfo is None else parsed


def _report_defaults(viewer: Viewer, clock: ClockDep) -> dict[str, str]:
    return {
        "unit_code": viewer.unit.code,
        "venue_category": next(iter(categories.current())),
        "level": "general",
        "source": "inspection",
        "found_at": clock.now().astimezone(default_zone()).strftime("%Y-%m-%dT%H:%M"),
    }


def _report_form(
    request: Request,
    session: Session,
    viewer: Viewer,
    form: dict[str, str],
    error: tuple[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = {
        "labels": _labels(),
        "form": form,
        "units": unit_choices(session, viewer),
        "error": error,
        "active": "hazard-new",
    }
    return render(request, "hazards/new.html", ctx, viewer=viewer, status_code=status_code)


@router.get("/console/hazards/new")
def report_page(request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep) -> HTMLResponse:
    return _report_form(request, session, viewer, _report_defaults(viewer, clock))


@router.post("/console/hazards/new")
def report(
    _: CsrfDep,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit_code: Annotated[str, Form(max_length=12)] = "",
    venue: Annotated[str, Form(max_length=400)] = "",
    venue_category: Annotated[str, Form(max_length=32)] = "",
    address: Annotated[str, Form(max_length=600)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
    level: Annotated[str, Form(max_length=16)] = "",
    basis: Annotated[str, Form(max_length=2000)] = "",
    found_at: Annotated[str, Form(max_length=40)] = "",
    source: Annotated[str, Form(max_length=16)] = "",
    responsible_org: Annotated[str, Form(max_length=400)] = "",
    responsible_person: Annotated[str, Form(max_length=200)] = "",
    responsible_phone: Annotated[str, Form(max_length=40)] = "",
    deadline: Annotated[str, Form(max_length=20)] = "",
    measures: Annotated[str, Form(max_length=4000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    form = {
        "unit_code": unit_code,
        "venue": venue,
        "venue_category": venue_category,
        "address": address,
        "description": description,
        "level": level,
        "basis": basis,
        "found_at": found_at,
        "source": source,
        "responsible_org": responsible_org,
        "responsible_person": responsible_person,
        "responsible_phone": responsible_phone,
        "deadline": deadline,
        "measures": measures,
    }
    try:
        data = HazardCreate.model_validate(
            {**form, "found_at": _local_datetime(found_at), "venue": venue.strip(), "deadline": deadline or None}
        )
        hazard, _unit = hazard_service.report(session, clock=clock, actor=viewer.principal, data=data)
        raw = photo.file.read(photos.MAX_BYTES + 1) if photo is not None and photo.filename else b""
        if raw:
            assert hazard.id is not None
            photos.add(session, clock=clock, actor=viewer.principal, store=photo_store(request),
                       hazard_id=hazard.id, phase="before", raw=raw)  # fmt: skip
    except (DomainError, ValidationError) as exc:
        session.rollback()  # the hazard and its photo go in together or not at all
        summary, fields = refusal(exc)
        if "file" in fields:
            fields["photo"] = fields.pop("file")
        return _report_form(request, session, viewer, form, (summary, fields), status_code_of(exc))
    return redirect(f"/console/hazards/{hazard.id}", msg="created")


# --- one hazard ----------------------------------------------------------------------------------------------------


def _hazard_page(
    request: Request,
    session: Session,
    clock: ClockDep,
    viewer: Viewer,
    hazard_id: int,
    *,
    error: tuple[str, str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    hazard, _ = hazard_service.get(session, actor=viewer.principal, hazard_id=hazard_id)
    detail = views.detail(session, actor=viewer.principal, hazard=hazard, now=clock.now())
    named = [detail.reported_by, *(e.actor for e in detail.timeline), *(p.uploaded_by for p in detail.photos)]
    ctx = {
        "labels": _labels(),
        "h": detail,
        "actors": labels.actors(session, named),
        "error": error,
        "messages": MESSAGES,
        "active": "hazards",
        "listing_tiers": [a.split(":")[1] for a in detail.actions if a.startswith("listing:")],
    }
    return render(request, "hazards/hazard.html", ctx, viewer=viewer, status_code=status_code)


@router.get("/console/hazards/{hazard_id}")
def hazard_page(
    request: Request, hazard_id: Id, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> HTMLResponse:
    try:
        return _hazard_page(request, session, clock, viewer, hazard_id)
    except DomainError:
        return render(
            request,
            "error.html",
            {"title": "未找到", "message": "未找到该隐患，或它不在您的管辖范围内。"},
            viewer=viewer,
            status_code=404,
        )


def _act(
    request: Request,
    session: Session,
    clock: ClockDep,
    viewer: Viewer,
    hazard_id: int,
    form_name: str,
    work: Any,
    done: str,
) -> Response:
    try:
        work()
    except (DomainError, ValidationError) as exc:
        session.rollback()
        summary, fields = refusal(exc)
        if isinstance(exc, DomainError) and exc.status == 404:
            return render(request, "error.html", {"title": "未找到", "message": summary}, viewer=viewer,
                          status_code=404)  # fmt: skip
        return _hazard_page(request, session, clock, viewer, hazard_id, error=(form_name, summary, fields),
                            status_code=status_code_of(exc))  # fmt: skip
    return redirect(f"/console/hazards/{hazard_id}", msg=done)


def _optional_float(value: str) -> float | str | None:
    text = value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


@router.post("/console/hazards/{hazard_id}/plan")
def plan(
    _: CsrfDep,
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    measures: Annotated[str, Form(max_length=4000)] = "",
    funds_cny: Annotated[str, Form(max_length=24)] = "",
    person: Annotated[str, Form(max_length=200)] = "",
    deadline: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    def work() -> None:
        data = PlanCreate.model_validate(
            {
                "measures": measures,
                "funds_cny": _optional_float(funds_cny),
                "person": person,
                "deadline": deadline or None,
            }
        )
        lifecycle.plan(session, clock=clock, actor=viewer.principal, hazard_id=hazard_id, data=data)

    return _act(request, session, clock, viewer, hazard_id, "plan", work, "plan")


@router.post("/console/hazards/{hazard_id}/submit")
def submit(
    _: CsrfDep,
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def work() -> None:
        data = SubmitRequest.model_validate({"note": note})
        lifecycle.submit(session, clock=clock, actor=viewer.principal, hazard_id=hazard_id, data=data)

    return _act(request, session, clock, viewer, hazard_id, "submit", work, "submitted")


@router.post("/console/hazards/{hazard_id}/verify")
def verify(
    _: CsrfDep,
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    passed: Annotated[str, Form(max_length=8)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    outcome = {"yes": True, "no": False}.get(passed)

    def work() -> None:
        data = VerifyRequest.model_validate({"passed": outcome, "note": note})
        lifecycle.verify(session, clock=clock, actor=viewer.principal, hazard_id=hazard_id, data=data)

    return _act(request, session, clock, viewer, hazard_id, "verify", work, "closed" if outcome else "verify_failed")


@router.post("/console/hazards/{hazard_id}/extension")
def extension(
    _: CsrfDep,
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    until: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    def work() -> None:
        data = ExtensionRequest.model_validate({"until": until or None, "reason": reason})
        lifecycle.extend(session, clock=clock, actor=viewer.principal, hazard_id=hazard_id, data=data)

    return _act(request, session, clock, viewer, hazard_id, "extension", work, "extension")


@router.post("/console/hazards/{hazard_id}/listing")
def listing(
    _: CsrfDep,
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    tier: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    def work() -> None:
        data = ListingRequest.model_validate({"tier": tier, "reason": reason})
        lifecycle.list_for_supervision(session, clock=clock, actor=viewer.principal, hazard_id=hazard_id, data=data)

    return _act(request, session, clock, viewer, hazard_id, "listing", work, "listed")


@router.post("/console/hazards/{hazard_id}/photos")
def add_photo(
    _: CsrfDep,
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    phase: Annotated[str, Form(max_length=16)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    def work() -> None:
        raw = file.file.read(photos.MAX_BYTES + 1) if file is not None else b""
        photos.add(session, clock=clock, actor=viewer.principal, store=photo_store(request), hazard_id=hazard_id,
                   phase=phase, raw=raw)  # fmt: skip

    return _act(request, session, clock, viewer, hazard_id, "photo", work, "photo")


@router.get("/console/hazards/{hazard_id}/photos/{photo_id}")
def photo_file(request: Request, hazard_id: Id, photo_id: Id, session: SessionDep, viewer: ViewerDep) -> Response:
    found = photos.get(session, actor=viewer.principal, hazard_id=hazard_id, photo_id=photo_id)
    return FileResponse(photo_store(request).path_of(found), media_type=found.content_type,
                        headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip
