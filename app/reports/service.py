"""The accountability report of one unit over a period: its children's rows, its own (本级) row when anything is
placed at the unit itself, the total over the whole subtree, and the subtree week by week."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Invalid, NotFound
from app.org import units as unit_service
from app.org.models import Unit
from app.reports import figures, sql
from app.reports.schemas import AccountabilityReport, Figures, UnitFigures, WeekFigures
from app.roster.resolve import zone_of
from app.roster.timeline import wall_to_utc

# A year and its leap day, with room for a period that starts and ends mid-month.
MAX_DAYS = 400


@dataclass(frozen=True)
class Period:
    """Local dates [start, end) in the unit's time zone."""

    start: date
    end: date


def default_period(unit: Unit, now: datetime) -> Period:
    """This local month."""
    today = now.astimezone(zone_of(unit)).date()
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Period(first, following)


def check_period(start: date, end: date) -> Period:
    if end <= start:
        raise Invalid.field("to", f"{end} is not after from ({start}); to is the first day after the period")
    if (end - start).days > MAX_DAYS:
        raise Invalid.field("to", f"the period is {(end - start).days} days; at most {MAX_DAYS}")
    return Period(start, end)


def unit_for(session: Session, *, actor: Principal, code: str | None) -> Unit:
    """The unit asked for (404 naming the field when unknown), else the actor's own, else the root of the tree."""
    if code:
        return unit_service.get(session, code, field="unit")
    if actor.unit_code:
        return unit_service.get(session, actor.unit_code)
    root = session.exec(select(Unit).where(col(Unit.parent_id).is_(None)).order_by(col(Unit.id))).first()
    if root is None:
        raise NotFound("no units are loaded")
    return root


def children_of(session: Session, unit: Unit) -> list[Unit]:
    return list(session.exec(select(Unit).where(Unit.parent_id == unit.id).order_by(col(Unit.code))).all())


def _figures(by_section: dict[str, dict[Any, Any]], key: Any) -> dict[str, Any]:
    return {
        "incidents": by_section["incidents"].get(key) or figures.empty_incidents(),
        "tiers": by_section["tiers"].get(key) or figures.empty_tiers(),
        "rollcall": by_section["rollcall"].get(key) or figures.ZERO_ROLLCALL,
        "notices": by_section["notices"].get(key) or figures.ZERO_NOTICES,
        "hazards": by_section["hazards"].get(key) or figures.ZERO_HAZARDS,
    }


def _sections(session: Session, scope: figures.Scope, groups: list[sql.Grouping]) -> list[dict[str, dict[Any, Any]]]:
    """Every section for each grouping; the two heavy sections read their rows once for all the groupings."""
    incidents = figures.incidents(session, scope, groups)
    tiers = figures.tiers(session, scope, groups)
    return [
        {
            "incidents": incidents[i],
            "tiers": tiers[i],
            "rollcall": figures.rollcall(session, scope, group),
            "notices": figures.notices(session, scope, group),
            "hazards": figures.hazards(session, scope, group),
        }
        for i, group in enumerate(groups)
    ]


def _has_any(f: dict[str, Any]) -> bool:
    model = Figures.model_validate(f)
    return bool(
        model.incidents.total or model.rollcall.posts or model.notices.receipts or model.hazards.found
        or any(t.required for t in model.tiers.values())
    )  # fmt: skip


def accountability(
    session: Session, *, clock: Clock, actor: Principal, unit: Unit, period: Period | None = None,
    weeks: bool = True,
) -> AccountabilityReport:  # fmt: skip
    """The report of `unit` (in the actor's subtree) over `period` (default: this local month)."""
    authorize(actor, "reports:read", unit)
    now = clock.now()
    period = period or default_period(unit, now)
    zone = zone_of(unit)
    start = wall_to_utc(datetime.combine(period.start, time()), zone)
    end = wall_to_utc(datetime.combine(period.end, time()), zone)
    dialect = session.get_bind().dialect.name
    scope = figures.Scope(root=unit, start=start, end=end, now=now, dialect=dialect)
    children = children_of(session, unit)
    groups = [sql.whole(unit)]
    if children:
        groups.append(sql.by_child(unit, children))
    if weeks:
        groups.append(sql.by_week(dialect, start))
    found = _sections(session, scope, groups)
    total_sections = found[0]
    total = UnitFigures(unit_code=unit.code, unit_name=unit.name, own=False, **_figures(total_sections, unit.code))
    rows: list[UnitFigures] = []
    if children:
        per_child = found[1]
        own = _figures(per_child, unit.code)
        if _has_any(own):
            rows.append(UnitFigures(unit_code=unit.code, unit_name=f"{unit.name}（本级）", own=True, **own))
        rows += [
            UnitFigures(unit_code=c.code, unit_name=c.name, own=False, **_figures(per_child, c.code)) for c in children
        ]
    else:
        rows.append(total.model_copy(update={"own": True}))
    week_rows: list[WeekFigures] = []
    if weeks:
        per_week = found[-1]
        count = ((period.end - period.start).days + 6) // 7
        week_rows = [
            WeekFigures(week=w, start=period.start + timedelta(days=7 * w), **_figures(per_week, w))
            for w in range(count)
        ]
    return AccountabilityReport.model_validate(
        {
            "unit_code": unit.code,
            "unit_name": unit.name,
            "tier": unit.tier,
            "timezone": zone.key,
            "from": period.start,
            "to": period.end,
            "generated_at": now,
            "rows": rows,
            "total": total,
            "weeks": week_rows,
        }
    )
