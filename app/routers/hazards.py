"""The hazard register (隐患排查整治), PRODUCT.md §10."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, File, Form, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, Response
from sqlmodel import Session

from app.config import Settings
from app.errors import Invalid
from app.hazards import categories, chase, lifecycle, lists, photos, stats, views
from app.hazards import service as hazard_service
from app.hazards.models import Level, Status
from app.hazards.photos import PhotoStore
from app.hazards.schemas import (
    CategoryPublic,
    ExtensionRequest,
    HazardCreate,
    HazardDetail,
    HazardPublic,
    HazardStats,
    ImportResult,
    ListingRequest,
    PhotoPublic,
    PlanCreate,
    SubmitRequest,
    VerifyRequest,
)
from app.org import units as unit_service
from app.org.models import Unit
from app.routers.deps import ClockDep, Id, PagingDep, PrincipalDep, SessionDep
from app.schemas import Page

router = APIRouter(prefix="/api/v1/hazards", tags=["hazards"])

UnitQuery = Annotated[str | None, Query(pattern=r"^\d{6,12}$", description="a unit code: that unit and its subtree")]
CategoryQuery = Annotated[str | None, Query(max_length=32)]
MAX_IMPORT_BYTES = 10 * 1024 * 1024
# Request bodies allowed past DUTYLINE_MAX_BODY_BYTES: a photo (5 MB) or a problem list, with multipart overhead.
UPLOAD_LIMITS = {"/api/v1/hazards": MAX_IMPORT_BYTES + 65_536, "/console/hazards": MAX_IMPORT_BYTES + 65_536}


def install(app: FastAPI, settings: Settings) -> None:
    """The register's routes, its configured categories and where its photos are kept."""
    categories.configure(settings.hazard_categories)
    chase.configure(escalate_days=settings.hazard_escalate_days)
    app.state.photo_store = PhotoStore(Path(settings.data_dir), keep_location=settings.hazard_photo_location == "keep")
    app.include_router(router)
    from app.web import hazards as console_pages  # the console's pages depend on this module's helpers

    app.include_router(console_pages.router)


def photo_store(request: Request) -> PhotoStore:
    store: PhotoStore = request.app.state.photo_store
    return store


def _unit(session: Session, code: str | None) -> Unit | None:
    return unit_service.get(session, code, field="unit") if code else None


def filters_of(
    session: Session,
    unit: str | None,
    status_: Status | None,
    level: Level | None,
    category: str | None,
    overdue: bool | None,
) -> hazard_service.Filters:
    return hazard_service.Filters(
        unit=_unit(session, unit), status=status_, level=level, category=category or None, overdue=overdue
    )


def read_upload(file: UploadFile | None, *, limit: int, field: str = "file") -> bytes:
    if file is None:
        raise Invalid.field(field, "a file is required (multipart field 'file')")
    raw = file.file.read(limit + 1)
    return raw


def _detail(session: Session, clock: ClockDep, principal: PrincipalDep, hazard_id: int) -> HazardDetail:
    hazard, _ = hazard_service.get(session, actor=principal, hazard_id=hazard_id)
    return views.detail(session, actor=principal, hazard=hazard, now=clock.now())


@router.get("/categories", summary="The venue categories hazards are registered under (configurable)")
def list_categories(principal: PrincipalDep) -> list[CategoryPublic]:
    _ = principal
    return [CategoryPublic(code=c, name=n) for c, n in categories.current().items()]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a hazard (inspector, unit admin or admin)")
def create_hazard(data: HazardCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> HazardDetail:
    hazard, _ = hazard_service.report(session, clock=clock, actor=principal, data=data)
    return views.detail(session, actor=principal, hazard=hazard, now=clock.now())


@router.get("", summary="The register within your scope, newest first (or overdue first), paginated")
def list_hazards(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    paging: PagingDep,
    unit: UnitQuery = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    level: Level | None = None,
    category: CategoryQuery = None,
    overdue: bool | None = None,
    sort: Annotated[Literal["new", "overdue"], Query(description="new: newest first; overdue: overdue first")] = "new",
) -> Page[HazardPublic]:
    rows, total = hazard_service.listing(
        session,
        clock=clock,
        actor=principal,
        filters=filters_of(session, unit, status_, level, category, overdue),
        limit=paging.limit,
        offset=paging.offset,
        overdue_first=sort == "overdue",
    )
    return Page(items=views.public_many(session, rows, clock.now()), total=total, limit=paging.limit,
                offset=paging.offset)  # fmt: skip


@router.get(
    "/export",
    summary="The register as CSV or XLSX, with the list's filters (importable again)",
    responses={200: {"content": {"text/csv": {}, lists.XLSX_TYPE: {}}}},
)
def export_hazards(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: UnitQuery = None,
    format: Literal["csv", "xlsx"] = "csv",
    status_: Annotated[Status | None, Query(alias="status")] = None,
    level: Level | None = None,
    category: CategoryQuery = None,
    overdue: bool | None = None,
) -> Response:
    filters = filters_of(session, unit, status_, level, category, overdue)
    name = f"hazards-{unit or principal.unit_code or 'all'}"
    if format == "xlsx":
        body = lists.export_xlsx(session, clock=clock, actor=principal, filters=filters)
        return Response(
            body, media_type=lists.XLSX_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'}
        )
    text = lists.export_csv(session, clock=clock, actor=principal, filters=filters)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/stats", summary="Per child unit: found, closed, closure rate, overdue, major, listed")
def hazard_stats(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: UnitQuery = None,
    from_: Annotated[date | None, Query(alias="from", description="found on or after this local date")] = None,
    to: Annotated[date | None, Query(description="found on or before this local date")] = None,
) -> HazardStats:
    return stats.per_child(session, clock=clock, actor=principal, unit=_unit(session, unit), start=from_, end=to)


@router.post(
    "/import",
    summary="Import a problem list (CSV or XLSX, columns = the JSON field names): all rows or none",
)
def import_hazards(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile | None, File(description="CSV (UTF-8) or XLSX")] = None,
) -> ImportResult:
    raw = read_upload(file, limit=MAX_IMPORT_BYTES)
    if len(raw) > MAX_IMPORT_BYTES:
        raise Invalid.field("file", f"at most {MAX_IMPORT_BYTES} bytes")
    return lists.import_file(session, clock=clock, actor=principal, raw=raw)


@router.get("/{hazard_id}", summary="One hazard with its timeline, photos and the actions you may take")
def get_hazard(hazard_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> HazardDetail:
    return _detail(session, clock, principal, hazard_id)


@router.post("/{hazard_id}/plan", summary="The rectification plan (整改方案): open → rectifying")
def plan_hazard(
    hazard_id: Id, data: PlanCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> HazardDetail:
    lifecycle.plan(session, clock=clock, actor=principal, hazard_id=hazard_id, data=data)
    return _detail(session, clock, principal, hazard_id)


@router.post("/{hazard_id}/submit", summary="Rectified, with an after photo: rectifying → submitted")
def submit_hazard(
    hazard_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep, data: SubmitRequest | None = None
) -> HazardDetail:
    lifecycle.submit(session, clock=clock, actor=principal, hazard_id=hazard_id, data=data or SubmitRequest())
    return _detail(session, clock, principal, hazard_id)


@router.post("/{hazard_id}/verify", summary="Verify: passed → closed (销号), failed → back to rectifying")
def verify_hazard(
    hazard_id: Id, data: VerifyRequest, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> HazardDetail:
    lifecycle.verify(session, clock=clock, actor=principal, hazard_id=hazard_id, data=data)
    return _detail(session, clock, principal, hazard_id)


@router.post("/{hazard_id}/extension", summary="Extend the deadline (granted by the tier above)")
def extend_hazard(
    hazard_id: Id, data: ExtensionRequest, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> HazardDetail:
    lifecycle.extend(session, clock=clock, actor=principal, hazard_id=hazard_id, data=data)
    return _detail(session, clock, principal, hazard_id)


@router.post("/{hazard_id}/listing", summary="List a major hazard for supervision (挂牌督办) at the district or city")
def list_hazard(
    hazard_id: Id, data: ListingRequest, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> HazardDetail:
    lifecycle.list_for_supervision(session, clock=clock, actor=principal, hazard_id=hazard_id, data=data)
    return _detail(session, clock, principal, hazard_id)


@router.post(
    "/{hazard_id}/photos",
    status_code=status.HTTP_201_CREATED,
    summary="Add an evidence photo (JPEG or PNG, at most 5 MB): before or after",
)
def add_photo(
    request: Request,
    hazard_id: Id,
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile | None, File(description="JPEG or PNG, at most 5 MB")] = None,
    phase: Annotated[str, Form(max_length=16, description="before or after")] = "",
) -> PhotoPublic:
    raw = read_upload(file, limit=photos.MAX_BYTES)
    _, photo = photos.add(
        session,
        clock=clock,
        actor=principal,
        store=photo_store(request),
        hazard_id=hazard_id,
        phase=phase,
        raw=raw,
    )
    return views.photo_public(photo)


@router.get(
    "/{hazard_id}/photos/{photo_id}",
    summary="An evidence photo",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def get_photo(request: Request, hazard_id: Id, photo_id: Id, session: SessionDep, principal: PrincipalDep) -> Response:
    photo = photos.get(session, actor=principal, hazard_id=hazard_id, photo_id=photo_id)
    return FileResponse(photo_store(request).path_of(photo), media_type=photo.content_type)
