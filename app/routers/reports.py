"""Accountability (问效问责), PRODUCT.md §11: the figures per child unit and in total, as JSON, CSV or XLSX."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from app.errors import Invalid
from app.reports import export
from app.reports import service as report_service
from app.reports.schemas import AccountabilityReport
from app.routers.deps import ClockDep, PrincipalDep, ReadSessionDep

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

DESCRIPTION = """
The accountability figures of a unit (default: yours) over a period of local dates [from, to) in the unit's time
zone (default: this month), for each child unit (a district's streets, the city's districts; a street: its own
row), a 本级 row for things placed at the unit itself when there are any, the total over the whole subtree, and
the subtree week by week. A principal reads only its own subtree (403 otherwise).

Every figure is defined in one sentence in the response schema (and in docs/reports.md): incidents by level;
per tier the seconds from the first page to the acknowledgement (median and 90th percentile) and the times the
tier was passed over (越级); first reports and follow-ups late (迟报); roll-call posts, answered, missed, vacant
and the answer rate; notices signed in time, late, never, and late feedback; hazards found, closed, overdue.

`format=csv` answers one row per unit (UTF-8 with a BOM; durations in seconds); `format=xlsx` one sheet per
section with Chinese headers, numbers as numbers and durations as durations.
"""


@router.get(
    "/accountability",
    summary="Accountability figures per child unit and in total (JSON, CSV or XLSX)",
    description=DESCRIPTION,
    response_model=AccountabilityReport,
    responses={200: {"content": {"text/csv": {}, XLSX: {}}}},
)
def accountability(
    session: ReadSessionDep,
    clock: ClockDep,
    principal: PrincipalDep,
    unit: Annotated[str | None, Query(pattern=r"^\d{6,12}$", description="a unit code (default: yours)")] = None,
    from_: Annotated[date | None, Query(alias="from", description="the first local date (included)")] = None,
    to: Annotated[date | None, Query(description="the local date after the last (excluded)")] = None,
    format_: Annotated[Literal["json", "csv", "xlsx"], Query(alias="format")] = "json",
) -> Response:
    target = report_service.unit_for(session, actor=principal, code=unit)
    period = None
    if from_ is not None or to is not None:
        if from_ is None or to is None:
            raise Invalid.field("from" if from_ is None else "to", "give both from and to, or neither (this month)")
        period = report_service.check_period(from_, to)
    report = report_service.accountability(session, clock=clock, actor=principal, unit=target, period=period)
    name = f"accountability-{report.unit_code}-{report.from_}-{report.to}"
    if format_ == "csv":
        return Response(
            export.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if format_ == "xlsx":
        return Response(
            export.to_xlsx(report),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return JSONResponse(report.model_dump(mode="json", by_alias=True))
