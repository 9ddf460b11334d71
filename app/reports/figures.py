"""The figures, one grouped query per section (GROUP BY the row's group: a child unit from its path, or a week
from its time). Nothing is loaded row by row: each query answers one line per group (per group and tier for the
tiers), and only the two values around each percentile come back to be interpolated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, func, literal_column, or_, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from app.hazards.models import Hazard
from app.hazards.models import Status as HazardStatus
from app.incidents.models import Incident, IncidentTier, Report, ReportKind, TimelineEntry
from app.notices.models import Notice, NoticeReceipt, NoticeStatus
from app.org.models import Tier, Unit
from app.reports import sql
from app.reports.schemas import (
    LEVELS,
    TIERS,
    HazardFigures,
    IncidentFigures,
    NoticeFigures,
    RollCallFigures,
    TierFigures,
)
from app.rollcall.models import EntryState, RollCall, RollCallEntry

I_T = Incident.__table__  # type: ignore[attr-defined]
I = I_T.c  # noqa: E741
IT_T = IncidentTier.__table__  # type: ignore[attr-defined]
IT = IT_T.c
TL_T = TimelineEntry.__table__  # type: ignore[attr-defined]
TL = TL_T.c
RP_T = Report.__table__  # type: ignore[attr-defined]
RP = RP_T.c
RC_T = RollCall.__table__  # type: ignore[attr-defined]
RC = RC_T.c
RE_T = RollCallEntry.__table__  # type: ignore[attr-defined]
RE = RE_T.c
U_T = Unit.__table__  # type: ignore[attr-defined]
U = U_T.c
N_T = Notice.__table__  # type: ignore[attr-defined]
N = N_T.c
NR_T = NoticeReceipt.__table__  # type: ignore[attr-defined]
NR = NR_T.c
H_T = Hazard.__table__  # type: ignore[attr-defined]
H = H_T.c


@dataclass(frozen=True)
class Scope:
    """What every section's query needs: the subtree's root, the period [start, end) in UTC, the time now."""

    root: Unit
    start: datetime
    end: datetime
    now: datetime
    dialect: str
    # One incident only (its review page): the same definitions over that incident's rows.
    incident_id: int | None = None

    def incident_filter(self) -> ColumnElement[bool] | None:
        return None if self.incident_id is None else I.id == self.incident_id


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _int(value: Any) -> int:
    return int(value or 0)


def _fan(base: Any, groups: Sequence[sql.Grouping], *columns: str) -> Any:
    """The base rows once per grouping, tagged `g` (its index) and `k` (the row's group in it), in one UNION ALL:
    one scan of the base, however many ways it is grouped."""
    parts = [
        select(
            literal_column(str(i)).label("g"),
            # One type for every grouping's key in the UNION (a unit code, a week number as text).
            cast(grp.key(base.c.path, base.c.at), String).label("k"),
            *(base.c[c] for c in columns),
        )
        for i, grp in enumerate(groups)
    ]
    return union_all(*parts).subquery("fanned") if len(parts) > 1 else parts[0].subquery("fanned")


def _materialized(base: Any) -> Any:
    # Read once however often it is referenced (PostgreSQL would inline it into each use; SQLite materialises a CTE
    # used more than once by itself).
    return base.prefix_with("MATERIALIZED", dialect="postgresql")


def incidents(session: Session, scope: Scope, groups: Sequence[sql.Grouping]) -> list[dict[Any, IncidentFigures]]:
    """Per group of each grouping: incidents by level, first reports late, follow-up deadlines missed."""
    late_mark = TL.data["report"].as_string()
    first_marked = exists().where(TL.incident_id == I.id, TL.kind == "late", late_mark == "first")
    first_filed_late = exists().where(RP.incident_id == I.id, RP.kind == ReportKind.first, RP.late.is_(True))
    marks = (
        select(func.count())
        .where(TL.incident_id == I.id, TL.kind == "late", late_mark == "follow_up")
        .scalar_subquery()
    )
    filed = (
        select(func.count())
        .where(RP.incident_id == I.id, RP.kind.in_([ReportKind.follow_up, ReportKind.final]), RP.late.is_(True))
        .scalar_subquery()
    )
    base = _materialized(
        select(
            I.unit_path.label("path"),
            I.created_at.label("at"),
            I.severity.label("severity"),
            case((or_(first_marked, first_filed_late), 1), else_=0).label("first_late"),
            case((marks > filed, marks), else_=filed).label("follow_up_late"),
        )
        .where(
            sql.where_all(
                I.created_at >= scope.start,
                I.created_at < scope.end,
                sql.in_subtree(I.unit_path, scope.root),
                scope.incident_filter(),
            )
        )
        .cte("period_incident")
    )
    rows = _fan(base, groups, "severity", "first_late", "follow_up_late")
    stmt = select(
        rows.c.g,
        rows.c.k,
        func.count(),
        *(_count(rows.c.severity == level) for level in LEVELS),
        func.sum(rows.c.first_late),
        func.sum(rows.c.follow_up_late),
    ).group_by(rows.c.g, rows.c.k)
    out: list[dict[Any, IncidentFigures]] = [{} for _ in groups]
    for g, k, total, *levels_and_late in session.execute(stmt).all():
        *levels, first_late, follow_up_late = levels_and_late
        out[int(g)][groups[int(g)].label(k)] = IncidentFigures(
            total=_int(total),
            by_level={level: _int(n) for level, n in zip(LEVELS, levels, strict=True)},
            first_report_late=_int(first_late),
            follow_up_late=_int(follow_up_late),
        )
    return out


def empty_incidents() -> IncidentFigures:
    return IncidentFigures(total=0, by_level=dict.fromkeys(LEVELS, 0), first_report_late=0, follow_up_late=0)


def tiers(session: Session, scope: Scope, groups: Sequence[sql.Grouping]) -> list[dict[Any, dict[str, TierFigures]]]:
    """Per group of each grouping and tier: required, acknowledged, passed over, and the percentiles of the time to
    acknowledge, in one query: the period's required tier rows are read once (each with its first page, one index
    look-up), ranked by their time within each group, and only the ranks around each percentile are kept."""
    first_page = (
        select(func.min(TL.at))
        .where(TL.incident_id == IT.incident_id, TL.kind == "page", TL.tier == IT.tier, TL.at >= IT.required_at)
        .scalar_subquery()
    )
    base = _materialized(
        select(
            I.unit_path.label("path"),
            I.created_at.label("at"),
            IT.tier.label("tier"),
            IT.step.label("step"),
            IT.acknowledged_at.label("ack"),
            first_page.label("paged"),
        )
        .select_from(IT_T.join(I_T, I.id == IT.incident_id))
        .where(
            sql.where_all(
                IT.required.is_(True),
                I.created_at >= scope.start,
                I.created_at < scope.end,
                sql.in_subtree(I.unit_path, scope.root),
                scope.incident_filter(),
            )
        )
        .cte("required_tier")
    )
    seconds = sql.seconds_between(scope.dialect, base.c.ack, base.c.paged)
    timed = case(
        (and_(base.c.ack.is_not(None), base.c.paged.is_not(None)), func.round(case((seconds < 0, 0), else_=seconds)))
    )
    timed_base = select(base.c.path, base.c.at, base.c.tier, base.c.step, base.c.ack, timed.label("s")).subquery(
        "timed"
    )
    fanned = _fan(timed_base, groups, "tier", "step", "ack", "s")
    part = (fanned.c.g, fanned.c.k, fanned.c.tier)
    # Untimed rows rank after the timed ones (NULLS LAST written out: SQLite puts NULLs first).
    ranked = select(
        *part,
        fanned.c.step,
        fanned.c.ack,
        fanned.c.s,
        func.row_number().over(partition_by=part, order_by=(fanned.c.s.is_(None), fanned.c.s)).label("rn"),
        func.count(fanned.c.s).over(partition_by=part).label("n"),
    ).subquery("ranked")
    picks = []
    for num, den in sql.PERCENTILES.values():
        low = sql.low_rank(ranked.c.n, num, den)
        picks += [
            func.max(case((ranked.c.rn == low, ranked.c.s))),
            func.max(case((and_(ranked.c.rn == low + 1, ranked.c.rn <= ranked.c.n), ranked.c.s))),
        ]
    stmt = select(
        ranked.c.g,
        ranked.c.k,
        ranked.c.tier,
        func.count(),
        func.count(ranked.c.ack),
        func.max(ranked.c.n),
        _count(and_(ranked.c.step >= 2, ranked.c.tier != Tier.city)),
        *picks,
    ).group_by(ranked.c.g, ranked.c.k, ranked.c.tier)
    out: list[dict[Any, dict[str, TierFigures]]] = [{} for _ in groups]
    for g, k, tier, required, acked, n_timed, passed, *pairs in session.execute(stmt).all():
        n = _int(n_timed)
        median, p90 = (
            sql.interpolate(n, num, den, pairs[2 * i], pairs[2 * i + 1])
            for i, (num, den) in enumerate(sql.PERCENTILES.values())
        )
        out[int(g)].setdefault(groups[int(g)].label(k), empty_tiers())[tier] = TierFigures(
            required=_int(required),
            acknowledged=_int(acked),
            timed=n,
            ack_seconds_median=median,
            ack_seconds_p90=p90,
            passed_over=None if tier == Tier.city else _int(passed),
        )
    return out


def empty_tiers() -> dict[str, TierFigures]:
    return {
        tier: TierFigures(
            required=0,
            acknowledged=0,
            timed=0,
            ack_seconds_median=None,
            ack_seconds_p90=None,
            passed_over=None if tier == Tier.city else 0,
        )
        for tier in TIERS
    }


def rollcall(session: Session, scope: Scope, group: sql.Grouping) -> dict[Any, RollCallFigures]:
    key = group.key(U.path, RC.started_at).label("k")
    stmt = (
        select(
            key,
            func.count(),
            *(_count(RE.state == state) for state in (EntryState.answered, EntryState.missed, EntryState.vacant)),
            _count(RE.state == EntryState.pending),
        )
        .select_from(RE_T.join(RC_T, RC.id == RE.roll_call_id).join(U_T, U.id == RE.unit_id))
        .where(
            sql.where_all(RC.started_at >= scope.start, RC.started_at < scope.end, sql.in_subtree(U.path, scope.root))
        )
        .group_by(key)
    )
    out: dict[Any, RollCallFigures] = {}
    for k, posts, answered, missed, vacant, pending in session.execute(stmt).all():
        out[group.label(k)] = rollcall_figures(_int(posts), _int(answered), _int(missed), _int(vacant), _int(pending))
    return out


def rollcall_figures(posts: int, answered: int, missed: int, vacant: int, pending: int) -> RollCallFigures:
    manned = posts - vacant
    rate = round(answered / manned, 4) if manned else None
    return RollCallFigures(posts=posts, answered=answered, missed=missed, vacant=vacant, pending=pending, rate=rate)


def notices(session: Session, scope: Scope, group: sql.Grouping) -> dict[Any, NoticeFigures]:
    key = group.key(NR.unit_path, NR.created_at).label("k")
    signed = NR.signed_at.is_not(None) & (NR.state == "signed")
    feedback_late = or_(
        NR.feedback_late.is_(True),
        and_(NR.feedback_at.is_(None), N.feedback_due_at.is_not(None), N.feedback_due_at <= scope.now),
    )
    stmt = (
        select(
            key,
            func.count(),
            _count(and_(signed, NR.signed_at <= NR.due_at)),
            _count(and_(signed, NR.signed_at > NR.due_at)),
            _count(and_(~signed, NR.due_at <= scope.now)),
            _count(and_(~signed, NR.due_at > scope.now)),
            _count(feedback_late),
        )
        .select_from(NR_T.join(N_T, N.id == NR.notice_id))
        .where(
            sql.where_all(
                NR.created_at >= scope.start,
                NR.created_at < scope.end,
                N.status == NoticeStatus.active,
                sql.in_subtree(NR.unit_path, scope.root),
            )
        )
        .group_by(key)
    )
    out: dict[Any, NoticeFigures] = {}
    for k, receipts, in_time, late, never, pending, fb_late in session.execute(stmt).all():
        out[group.label(k)] = NoticeFigures(
            receipts=_int(receipts),
            signed_in_time=_int(in_time),
            signed_late=_int(late),
            never_signed=_int(never),
            pending=_int(pending),
            feedback_late=_int(fb_late),
        )
    return out


def hazards(session: Session, scope: Scope, group: sql.Grouping) -> dict[Any, HazardFigures]:
    key = group.key(H.unit_path, H.found_at).label("k")
    # Written out like app.hazards.service.CHASED_SQL: the partial index's predicate matches only literal values.
    chased = text("hazard.status IN ('open', 'rectifying')")
    stmt = (
        select(
            key,
            func.count(),
            _count(H.status == HazardStatus.closed),
            _count(and_(chased, H.due_at <= scope.now)),
        )
        .where(
            sql.where_all(H.found_at >= scope.start, H.found_at < scope.end, sql.in_subtree(H.unit_path, scope.root))
        )
        .group_by(key)
    )
    return {
        group.label(k): HazardFigures(found=_int(found), closed=_int(closed), overdue=_int(overdue))
        for k, found, closed, overdue in session.execute(stmt).all()
    }


ZERO_NOTICES = NoticeFigures(receipts=0, signed_in_time=0, signed_late=0, never_signed=0, pending=0, feedback_late=0)
ZERO_HAZARDS = HazardFigures(found=0, closed=0, overdue=0)
ZERO_ROLLCALL = rollcall_figures(0, 0, 0, 0, 0)
