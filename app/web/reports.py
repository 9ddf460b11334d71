"""The console's 问效问责 page: pick a unit of your subtree and a period (this week, this month, a range), read the
figures per child unit in a sortable table with three charts (ECharts, served from app/web/static/vendor), and
download them as CSV or XLSX. It reads through the same service as the API, on the read replica when one is set."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app import labels
from app.errors import DomainError
from app.incidents import service as incident_service
from app.reports import export, review
from app.reports import service as report_service
from app.reports.schemas import AccountabilityReport
from app.roster.resolve import zone_of
from app.routers.deps import ClockDep, Id, ReadSessionDep, SessionDep
from app.routers.reports import XLSX
from app.web.pages import ViewerDep, render, unit_choices

router = APIRouter(include_in_schema=False)

PERIODS = labels.REPORT_PERIODS
FIELDS = labels.REPORT_FIELDS
# Bottom up, as an incident climbs: 街道级, 区级, 市级.
TIERS = {t: labels.TIER_LEVELS[t] for t in ("street", "district", "city")}


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _period(kind: str, start: str, end: str, *, today: date) -> tuple[report_service.Period | None, dict[str, str]]:
    """The period picked, or the Chinese error of each field. A range's end date is included on the page (the API's
    `to` is the day after)."""
    if kind == "week":
        monday = today - timedelta(days=today.weekday())
        return report_service.Period(monday, monday + timedelta(days=7)), {}
    if kind != "custom":
        month = today.replace(day=1)
        return report_service.Period(month, (month + timedelta(days=32)).replace(day=1)), {}
    errors: dict[str, str] = {}
    first, last = _parse_day(start), _parse_day(end)
    if first is None:
        errors["from"] = "请填写有效的日期（年-月-日）"
    if last is None:
        errors["to"] = "请填写有效的日期（年-月-日）"
    if first is None or last is None:
        return None, errors
    if last < first:
        return None, {"to": "截止日期不能早于起始日期"}
    if (last - first).days + 1 > report_service.MAX_DAYS:
        return None, {"to": f"统计期间最长 {report_service.MAX_DAYS} 天"}
    return report_service.Period(first, last + timedelta(days=1)), {}


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def chart_data(report: AccountabilityReport) -> dict[str, Any]:
    """What the three charts draw: per child unit the median minutes to acknowledge by tier and the rates, and the
    subtree's weeks."""
    rows = [r for r in report.rows if not r.own] or report.rows
    return {
        "units": [r.unit_name for r in rows],
        "ack": {t: [_minutes(r.tiers[t].ack_seconds_median) for r in rows] for t in TIERS},
        "tiers": TIERS,
        "rates": {
            "rollcall": [None if r.rollcall.rate is None else round(r.rollcall.rate * 100, 1) for r in rows],
            "notices": [
                round(r.notices.signed_in_time / r.notices.receipts * 100, 1) if r.notices.receipts else None
                for r in rows
            ],
        },
        "weeks": {
            "labels": [w.start.strftime("%m-%d") for w in report.weeks],
            "incidents": [w.incidents.total for w in report.weeks],
            "ack": {t: [_minutes(w.tiers[t].ack_seconds_median) for w in report.weeks] for t in TIERS},
        },
    }


def duration(seconds: float | None) -> str:
    """Seconds as the table shows them: 2分30秒, 1时05分."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 3600:
        return f"{s // 60}分{s % 60:02d}秒" if s >= 60 else f"{s}秒"
    return f"{s // 3600}时{(s % 3600) // 60:02d}分"


@router.get("/console/reports")
def reports_page(
    request: Request,
    session: ReadSessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    unit: Annotated[str, Query(max_length=12)] = "",
    period: Annotated[str, Query(max_length=8)] = "month",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
) -> HTMLResponse:
    errors: dict[str, str] = {}
    report = None
    target = viewer.unit
    if unit and unit != viewer.unit.code:
        try:
            target = report_service.unit_for(session, actor=viewer.principal, code=unit)
        except DomainError:
            errors["unit"] = "未知的单位代码"
    today = clock.now().astimezone(zone_of(target)).date()
    chosen, period_errors = _period(period if period in PERIODS else "month", from_, to, today=today)
    errors.update(period_errors)
    if not errors and chosen is not None:
        try:
            report = report_service.accountability(
                session, clock=clock, actor=viewer.principal, unit=target, period=chosen
            )
        except DomainError as exc:
            errors["unit"] = "超出您的管辖范围" if exc.status == 403 else exc.message
    query = ""
    if report is not None:
        query = f"unit={report.unit_code}&from={report.from_}&to={report.to}"
    ctx = {
        "active": "reports",
        "units": unit_choices(session, viewer),
        "form": {"unit": target.code, "period": period, "from": from_, "to": to},
        "periods": PERIODS,
        "tiers": TIERS,
        "report": report,
        "last_day": (report.to - timedelta(days=1)) if report else None,
        # Inside a <script type="application/json">: "</" must not close it.
        "charts": json.dumps(chart_data(report), ensure_ascii=False).replace("</", "<\\/") if report else "{}",
        "duration": duration,
        "query": query,
        "errors": {FIELDS[k]: v for k, v in errors.items()},
        "messages": {},
    }
    return render(request, "reports/accountability.html", ctx, viewer=viewer, status_code=422 if errors else 200)


@router.get("/console/reports/export")
def reports_export(
    session: ReadSessionDep,
    clock: ClockDep,
    viewer: ViewerDep,
    request: Request,
    unit: Annotated[str, Query(max_length=12)] = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    format_: Annotated[str, Query(alias="format", max_length=4)] = "xlsx",
) -> Response:
    start, end = _parse_day(from_), _parse_day(to)
    problem = None
    if format_ not in ("csv", "xlsx"):
        problem = "格式只能是 CSV 或 XLSX"
    elif start is None or end is None:
        problem = "请填写有效的统计期间"
    if problem is None and start is not None and end is not None:
        try:
            target = report_service.unit_for(session, actor=viewer.principal, code=unit or None)
            period = report_service.check_period(start, end)
            report = report_service.accountability(
                session, clock=clock, actor=viewer.principal, unit=target, period=period
            )
        except DomainError as exc:
            problem = "超出您的管辖范围" if exc.status == 403 else exc.message
        else:
            name = f"accountability-{report.unit_code}-{report.from_}-{report.to}"
            if format_ == "csv":
                return Response(export.to_csv(report), media_type="text/csv; charset=utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip
            return Response(export.to_xlsx(report), media_type=XLSX,
                            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})  # fmt: skip
    return render(request, "error.html", {"title": "无法导出", "message": problem}, viewer=viewer, status_code=422)


@router.get("/console/incidents/{incident_id}/review")
def review_page(
    incident_id: Id, request: Request, session: SessionDep, clock: ClockDep, viewer: ViewerDep
) -> HTMLResponse:
    """An incident's chain as it happened, for the review after it (复盘) and for print."""
    try:
        inc = incident_service.get(session, actor=viewer.principal, incident_id=incident_id)
    except DomainError as exc:
        return render(request, "error.html", {"title": "找不到该事件", "message": "该事件不存在或不在您的管辖范围内。"},
                      viewer=viewer, status_code=exc.status)  # fmt: skip
    found = review.review(session, inc, now=clock.now())
    named = [rep.author for rep in found.reports] + [e.actor for e in found.late_marks]
    named += [e.actor for line in found.tiers for e in line.events]
    ctx = {
        "active": "incidents",
        "r": found,
        "actors": labels.actors(session, named),
        "tiers": TIERS,
        "duration": duration,
        "messages": {},
    }
    return render(request, "reports/review.html", ctx, viewer=viewer)
