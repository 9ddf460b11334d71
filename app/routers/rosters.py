"""Rotations, overrides and swaps, CSV import/export, gaps, and the calendar feed."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from sqlmodel import Session

from app.errors import Invalid
from app.org import units as unit_service
from app.roster import calendar, imports
from app.roster import gaps as gaps_made
from app.roster import service as roster_service
from app.roster import views as roster_views
from app.roster.models import Rotation
from app.roster.resolve import Gap
from app.roster.schemas import (
    CalendarLink,
    GapReport,
    ImportResult,
    OverrideCancelled,
    OverrideCreate,
    OverridePublic,
    RotationChanged,
    RotationCreate,
    RotationEnd,
    RotationPublic,
    SwapCreate,
    SwapPublic,
)
from app.routers.deps import ClockDep, Id, PrincipalDep, SessionDep, SettingsDep
from app.routers.times import parse_instant

router = APIRouter(tags=["rosters"])

UnitQuery = Annotated[str, Query(pattern=r"^\d{6,12}$", description="unit code")]
CSV_EXAMPLE = (
    "unit_code,role,date,person\n110106001,duty_officer,2026-05-01,street.duty\n"
    "110106001,leader,2026-05-01,+8613800000102\n"
)


@router.post("/api/v1/rotations", status_code=status.HTTP_201_CREATED, summary="Add a rotation (轮班)")
def create_rotation(
    data: RotationCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> RotationPublic:
    rotation = roster_service.create_rotation(session, clock=clock, actor=principal, data=data)
    return roster_service.rotations_public(session, [rotation])[0]


@router.get("/api/v1/rotations", summary="Rotations of a unit's subtree (default: your scope)")
def list_rotations(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$")] = None,
    include_ended: bool = False,
) -> list[RotationPublic]:
    root = unit_service.get(session, unit, field="unit") if unit else None
    rows = roster_service.list_rotations(session, clock=clock, actor=principal, unit=root, include_ended=include_ended)
    return roster_service.rotations_public(session, rows)


def _rotation_changed(session: Session, rotation: Rotation, opened: list[Gap]) -> RotationChanged:
    shown = roster_service.rotations_public(session, [rotation])[0]
    return RotationChanged(**shown.model_dump(), gaps_opened=gaps_made.public(opened))


@router.patch(
    "/api/v1/rotations/{rotation_id}",
    summary="End a rotation at a given instant (answers with the gaps it opens in the next 72 h)",
)
def end_rotation_at(
    rotation_id: Id, data: RotationEnd, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> RotationChanged:
    rotation, opened = gaps_made.end_rotation(
        session, clock=clock, actor=principal, rotation_id=rotation_id, ends_at=data.ends_at
    )
    return _rotation_changed(session, rotation, opened)


@router.delete(
    "/api/v1/rotations/{rotation_id}",
    summary="End a rotation now (it is kept for the record; answers with the gaps it opens in the next 72 h)",
)
def end_rotation_now(rotation_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> RotationChanged:
    rotation, opened = gaps_made.end_rotation(
        session, clock=clock, actor=principal, rotation_id=rotation_id, ends_at=None
    )
    return _rotation_changed(session, rotation, opened)


@router.post(
    "/api/v1/overrides",
    status_code=status.HTTP_201_CREATED,
    summary="替班: someone covers [starts_at, ends_at) for a unit and role (beats shifts and rotations)",
)
def create_override(
    data: OverrideCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> OverridePublic:
    override, unit, person = roster_service.create_override(session, clock=clock, actor=principal, data=data)
    return roster_service.override_public(override, unit, person)


@router.post(
    "/api/v1/overrides/swap",
    status_code=status.HTTP_201_CREATED,
    summary="换班: two people exchange shifts, as one act (409 unless each holds the shift they give away)",
)
def swap(data: SwapCreate, session: SessionDep, clock: ClockDep, principal: PrincipalDep) -> SwapPublic:
    group, rows = roster_service.swap(session, clock=clock, actor=principal, data=data)
    return SwapPublic(swap_group=group, overrides=[roster_service.override_public(o, u, p) for o, u, p in rows])


@router.delete(
    "/api/v1/overrides/{override_id}",
    summary="Cancel an override (both halves of a swap); answers with the gaps it opens in the next 72 h",
)
def cancel_override(
    override_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep
) -> OverrideCancelled:
    cancelled, opened = gaps_made.cancel_override(session, clock=clock, actor=principal, override_id=override_id)
    return OverrideCancelled(cancelled=cancelled, gaps_opened=gaps_made.public(opened))


async def csv_text(request: Request) -> str:
    """The CSV from a text/csv body or a multipart `file` field (read here, so the handler stays synchronous)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload: Any = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid.field("file", "send the CSV as the multipart field `file`")
        raw = await upload.read()
    else:
        raw = await request.body()
    try:
        return bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid.field("file", "the CSV must be UTF-8") from exc


@router.post(
    "/api/v1/rosters/import",
    summary="Import a duty table (CSV, all or nothing; every bad row is named)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                },
            },
        }
    },
)
def import_roster(
    text: Annotated[str, Depends(csv_text)],
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    handoff: Annotated[time, Query(description="when a `date` row's 24 hours begin, in the unit's zone")] = time(8, 30),
) -> ImportResult:
    return imports.import_csv(session, clock=clock, actor=principal, text=text, handoff=handoff)


@router.get(
    "/api/v1/rosters/export",
    summary="The explicit shifts of a unit and its subtree for a month, as importable CSV",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_roster(
    session: SessionDep,
    principal: PrincipalDep,
    unit: UnitQuery,
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")],
) -> Response:
    body = imports.export_csv(session, actor=principal, unit_code=unit, month=month)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="roster-{unit}-{month}.csv"'},
    )


@router.get("/api/v1/rosters/gaps", summary="Every interval where a unit of this subtree has nobody on duty")
def roster_gaps(
    session: SessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: UnitQuery,
    from_: Annotated[str | None, Query(alias="from", max_length=64, description="default: now")] = None,
    to: Annotated[str | None, Query(max_length=64, description="default: 7 days after from")] = None,
) -> GapReport:
    start = parse_instant(from_, field="from", default=clock.now())
    end = parse_instant(to, field="to", default=start + timedelta(days=7))
    items = roster_views.gap_report(session, actor=principal, unit_code=unit, start=start, end=end)
    return GapReport(start=start, end=end, items=items)


@router.get("/api/v1/people/{person_id}/calendar-url", summary="The person's calendar feed URL (self or roster admin)")
def calendar_url(
    person_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep, settings: SettingsDep
) -> CalendarLink:
    return calendar.link(session, clock=clock, actor=principal, person_id=person_id, base_url=settings.public_base_url)


@router.post("/api/v1/people/{person_id}/calendar-url/rotate", summary="A new feed URL; the old one stops working")
def rotate_calendar_url(
    person_id: Id, session: SessionDep, clock: ClockDep, principal: PrincipalDep, settings: SettingsDep
) -> CalendarLink:
    return calendar.rotate(
        session, clock=clock, actor=principal, person_id=person_id, base_url=settings.public_base_url
    )


@router.get(
    "/api/v1/people/{person_id}/calendar.ics",
    summary="The person's duty as iCalendar (no sign-in: the token in the URL is the key)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/calendar": {}}}},
)
def calendar_feed(
    person_id: Id,
    session: SessionDep,
    clock: ClockDep,
    token: Annotated[str, Query(min_length=8, max_length=128)],
) -> Response:
    body = calendar.feed(session, clock=clock, person_id=person_id, token=token)
    return Response(body, media_type="text/calendar; charset=utf-8")
