"""Statistics per child unit: found, closed, closure rate, overdue, major, listed (one grouped query)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Invalid
from app.hazards import service as hazard_service
from app.hazards.models import Hazard, Level, Status
from app.hazards.schemas import HazardStats, StatsRow
from app.org.models import Tier, Unit
from app.roster.resolve import zone_of
from app.roster.timeline import wall_to_utc


def _row(code: str, name: str, values: tuple[int, int, int, int, int] | None) -> StatsRow:
    found, closed, overdue, major, listed = values or (0, 0, 0, 0, 0)
    return StatsRow(
        unit_code=code,
        unit_name=name,
        found=found,
        closed=closed,
        closure_rate=round(closed / found, 4) if found else None,
        overdue=overdue,
        major=major,
        listed=listed,
    )


def per_child(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    unit: Unit | None,
    start: date | None = None,
    end: date | None = None,
) -> HazardStats:
    """The hazards found in [start, end] (local dates, both included) of each child unit of `unit` (default: the
    actor's), counted as they stand now. A street has no children: its own row. Hazards placed at a district
    itself show as the district's own row (本级)."""
    root = hazard_service.scope_root(session, actor, unit)
    if root is None:
        root = session.exec(select(Unit).where(Unit.tier == Tier.city).order_by(col(Unit.id))).first()
        assert root is not None
    authorize(actor, "hazards:read", root)
    if start is not None and end is not None and end < start:
        raise Invalid.field("to", f"{end} is before from ({start})")
    now = clock.now()
    zone = zone_of(root)
    group: Any = {Tier.city: Hazard.district_code, Tier.district: Hazard.street_code}.get(
        Tier(root.tier), Hazard.street_code
    )
    chased = hazard_service.overdue_clause(now)
    stmt = sa_select(
        group,
        func.count(),
        func.sum(case((col(Hazard.status) == Status.closed, 1), else_=0)),
        func.sum(case((chased, 1), else_=0)),
        func.sum(case((col(Hazard.level) == Level.major, 1), else_=0)),
        func.sum(case((col(Hazard.listed_tier).is_not(None), 1), else_=0)),
    ).where(hazard_service.place_filter(root))
    if start is not None:
        stmt = stmt.where(col(Hazard.found_at) >= wall_to_utc(datetime.combine(start, time()), zone))
    if end is not None:
        stmt = stmt.where(col(Hazard.found_at) < wall_to_utc(datetime.combine(end + timedelta(days=1), time()), zone))
    counted: dict[str | None, tuple[int, int, int, int, int]] = {
        key: (int(f), int(c or 0), int(o or 0), int(m or 0), int(li or 0))
        for key, f, c, o, m, li in session.execute(stmt.group_by(group)).all()
    }
    rows: list[StatsRow] = []
    if root.tier == Tier.street:
        rows.append(_row(root.code, root.name, counted.get(root.code)))
    else:
        children = session.exec(select(Unit).where(Unit.parent_id == root.id).order_by(col(Unit.code))).all()
        if None in counted:
            rows.append(_row(root.code, f"{root.name}（本级）", counted[None]))
        rows.extend(_row(c.code, c.name, counted.get(c.code)) for c in children)
    totals = tuple(sum(getattr(r, k) for r in rows) for k in ("found", "closed", "overdue", "major", "listed"))
    total = _row(root.code, root.name, (totals[0], totals[1], totals[2], totals[3], totals[4]))
    return HazardStats.model_validate(
        {"unit_code": root.code, "unit_name": root.name, "from": start, "to": end, "rows": rows, "total": total}
    )
