"""The report as files: CSV (UTF-8 with a BOM, so Excel reads the Chinese) and XLSX (one sheet per section,
Chinese headers, numbers as numbers, times to acknowledge as durations)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from app import labels
from app.reports.schemas import LEVELS, TIERS, AccountabilityReport, Figures, UnitFigures, WeekFigures

LEVEL_LABELS = {level: labels.level(level) for level in LEVELS}  # 一般（IV级）: never "IV级" alone
TIER_LABELS = labels.TIER_LEVELS  # 街道级, 区级, 市级
DURATION_FORMAT = "[h]:mm:ss"
RATE_FORMAT = "0.0%"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Any], Any]
    kind: str = "int"  # int, seconds (a duration), rate (a fraction), text


def _unit_columns() -> list[Column]:
    return [Column("单位代码", lambda r: r.unit_code, "text"), Column("单位", lambda r: r.unit_name, "text")]


def _level_of(level: str) -> Callable[[Any], Any]:
    return lambda f: f.incidents.by_level[level]


def _median_of(tier: str) -> Callable[[Any], Any]:
    return lambda w: w.tiers[tier].ack_seconds_median


def _incident_columns() -> list[Column]:
    return [
        Column("事件数", lambda f: f.incidents.total),
        *(Column(LEVEL_LABELS[lv], _level_of(lv)) for lv in LEVELS),
        Column("首报迟报", lambda f: f.incidents.first_report_late),
        Column("续报迟报", lambda f: f.incidents.follow_up_late),
    ]


def _tier_columns(tier: str, *, prefix: str = "") -> list[Column]:
    def t(f: Figures) -> Any:
        return f.tiers[tier]

    return [
        Column(f"{prefix}须签收", lambda f: t(f).required),
        Column(f"{prefix}已签收", lambda f: t(f).acknowledged),
        Column(f"{prefix}签收用时中位数", lambda f: t(f).ack_seconds_median, "seconds"),
        Column(f"{prefix}签收用时P90", lambda f: t(f).ack_seconds_p90, "seconds"),
        Column(f"{prefix}越级次数", lambda f: t(f).passed_over),
    ]


def _rollcall_columns() -> list[Column]:
    return [
        Column("查岗岗位数", lambda f: f.rollcall.posts),
        Column("应答", lambda f: f.rollcall.answered),
        Column("未应答", lambda f: f.rollcall.missed),
        Column("空岗", lambda f: f.rollcall.vacant),
        Column("待应答", lambda f: f.rollcall.pending),
        Column("应答率", lambda f: f.rollcall.rate, "rate"),
    ]


def _notice_columns() -> list[Column]:
    return [
        Column("通知签收单", lambda f: f.notices.receipts),
        Column("按时签收", lambda f: f.notices.signed_in_time),
        Column("超时签收", lambda f: f.notices.signed_late),
        Column("逾期未签收", lambda f: f.notices.never_signed),
        Column("待签收", lambda f: f.notices.pending),
        Column("反馈超时", lambda f: f.notices.feedback_late),
    ]


def _hazard_columns() -> list[Column]:
    return [
        Column("发现隐患", lambda f: f.hazards.found),
        Column("已销号", lambda f: f.hazards.closed),
        Column("逾期未整改", lambda f: f.hazards.overdue),
    ]


def flat_columns() -> list[Column]:
    """Every figure of a row, in one line: the CSV's columns (durations in seconds there)."""
    tiers = [c for tier in TIERS for c in _tier_columns(tier, prefix=TIER_LABELS[tier])]
    return [
        *_unit_columns(),
        *_incident_columns(),
        *tiers,
        *_rollcall_columns(),
        *_notice_columns(),
        *_hazard_columns(),
    ]


def _all_rows(report: AccountabilityReport) -> list[UnitFigures]:
    return [*report.rows, report.total.model_copy(update={"unit_name": f"{report.total.unit_name}（合计）"})]


def to_csv(report: AccountabilityReport) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = flat_columns()
    writer.writerow([f"{c.header}（秒）" if c.kind == "seconds" else c.header for c in columns])
    for row in _all_rows(report):
        writer.writerow(["" if (v := c.value(row)) is None else v for c in columns])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _cell_value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.kind == "seconds":
        return timedelta(seconds=float(value))
    return value


def _sheet(book: Workbook, title: str, columns: list[Column], rows: Iterable[Any]) -> None:
    sheet = book.create_sheet(title)
    sheet.append([c.header for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for r, row in enumerate(rows, start=2):
        for i, column in enumerate(columns, start=1):
            cell = sheet.cell(row=r, column=i, value=_cell_value(column, column.value(row)))
            if column.kind == "seconds":
                cell.number_format = DURATION_FORMAT
            elif column.kind == "rate":
                cell.number_format = RATE_FORMAT
    for i, column in enumerate(columns, start=1):
        width = max(10, len(column.header) * 2 + 2)
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = width
    sheet.freeze_panes = "C2" if columns[0].header == "单位代码" else "A2"


@dataclass(frozen=True)
class _TierRow:
    unit_code: str
    unit_name: str
    tier: str
    figures: Figures


def _tier_sheet_columns() -> list[Column]:
    return [
        Column("单位代码", lambda r: r.unit_code, "text"),
        Column("单位", lambda r: r.unit_name, "text"),
        Column("层级", lambda r: TIER_LABELS[r.tier], "text"),
        Column("须签收", lambda r: r.figures.tiers[r.tier].required),
        Column("已签收", lambda r: r.figures.tiers[r.tier].acknowledged),
        Column("计时", lambda r: r.figures.tiers[r.tier].timed),
        Column("签收用时中位数", lambda r: r.figures.tiers[r.tier].ack_seconds_median, "seconds"),
        Column("签收用时P90", lambda r: r.figures.tiers[r.tier].ack_seconds_p90, "seconds"),
        Column("越级次数", lambda r: r.figures.tiers[r.tier].passed_over),
    ]


def _week_columns() -> list[Column]:
    return [
        Column("周次", lambda w: w.week + 1),
        Column("起始日期", lambda w: w.start, "text"),
        Column("事件数", lambda w: w.incidents.total),
        *(Column(f"{TIER_LABELS[t]}签收用时中位数", _median_of(t), "seconds") for t in TIERS),
        Column("首报迟报", lambda w: w.incidents.first_report_late),
        Column("查岗应答率", lambda w: w.rollcall.rate, "rate"),
        Column("按时签收", lambda w: w.notices.signed_in_time),
        Column("发现隐患", lambda w: w.hazards.found),
    ]


SHEETS = ("事件与报告", "签收用时", "查岗", "通知签收", "隐患", "按周", "说明")


def to_xlsx(report: AccountabilityReport) -> bytes:
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    rows = _all_rows(report)
    _sheet(book, SHEETS[0], [*_unit_columns(), *_incident_columns()], rows)
    tier_rows = [_TierRow(r.unit_code, r.unit_name, tier, r) for r in rows for tier in TIERS]
    _sheet(book, SHEETS[1], _tier_sheet_columns(), tier_rows)
    _sheet(book, SHEETS[2], [*_unit_columns(), *_rollcall_columns()], rows)
    _sheet(book, SHEETS[3], [*_unit_columns(), *_notice_columns()], rows)
    _sheet(book, SHEETS[4], [*_unit_columns(), *_hazard_columns()], rows)
    weeks: list[WeekFigures] = report.weeks
    _sheet(book, SHEETS[5], _week_columns(), weeks)
    about = book.create_sheet(SHEETS[6])
    about.append(["单位", f"{report.unit_name}({report.unit_code})"])
    about.append(["统计期间", f"{report.from_} 至 {report.to}（不含）", report.timezone])
    about.append(["生成时间", report.generated_at.isoformat()])
    about.append([])
    about.append(["指标", "定义"])
    for name, text in definitions():
        about.append([name, text])
    about.column_dimensions["A"].width = 28
    about.column_dimensions["B"].width = 120
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def definitions() -> list[tuple[str, str]]:
    """Each figure's name and its one-sentence definition (from the schema, the same text as the API's)."""
    from app.reports import schemas

    out: list[tuple[str, str]] = []
    for section, model in (
        ("incidents", schemas.IncidentFigures),
        ("tiers.*", schemas.TierFigures),
        ("rollcall", schemas.RollCallFigures),
        ("notices", schemas.NoticeFigures),
        ("hazards", schemas.HazardFigures),
    ):
        for name, field in model.model_fields.items():
            out.append((f"{section}.{name}", field.description or ""))
    return out
