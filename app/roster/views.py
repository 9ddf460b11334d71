"""The on-duty views: who is on duty along a unit's chain, the board, gaps, one unit's month, its overrides.

`duty_board` and `month_grid` are what the console's board and roster pages show, built here so that the console
only renders them (and so the month is cut in the unit's own zone, as the CSV export cuts it).
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.auth.principal import Principal, authorize
from app.errors import Invalid
from app.org import paths
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster import practice
from app.roster.models import DUTY_ROLES, HandoverNote, Override
from app.roster.resolve import gaps, resolve_many_brief, timelines, zone_of
from app.roster.schemas import GapPublic, OnCallEntry, OverridePublic, PersonBrief
from app.roster.service import brief, may_read, override_public, people_by_id
from app.roster.timeline import Segment, person_segments, wall_to_utc

MAX_WINDOW = timedelta(days=92)


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Invalid.field("to", "must be after from")
    if end - start > MAX_WINDOW:
        raise Invalid.field("to", "the window may be at most 92 days")


def _entries(session: Session, units: Sequence[Unit], at: datetime) -> list[OnCallEntry]:
    found = resolve_many_brief(session, units=units, at=at)
    out = []
    for u in units:
        assert u.id is not None
        out.append(
            OnCallEntry(
                tier=u.tier,
                unit_code=u.code,
                unit_name=u.name,
                duty_officer=brief(found[(u.id, "duty_officer")]),
                leader=brief(found[(u.id, "leader")]),
            )
        )
    return out


def oncall_chain(session: Session, *, actor: Principal, unit_code: str, at: datetime) -> list[OnCallEntry]:
    """Who is on duty at `at` from this unit up to the city (the unit first)."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    chain = list(reversed(unit_service.chain(session, unit)))
    return _entries(session, chain, at)


def board(session: Session, *, actor: Principal, at: datetime) -> list[OnCallEntry]:
    """Who is on duty at `at` for every unit the actor may see (the whole tree for city principals), tree order."""
    authorize(actor, "rosters:read")
    query = select(Unit)
    if actor.unit_path is not None and "/" in actor.unit_path:
        above = actor.unit_path.split("/")[:-1]
        query = query.where(unit_service.in_subtree(actor.unit_path) | col(Unit.code).in_(above))
    units = list(session.exec(query.order_by(col(Unit.path))))
    return _entries(session, units, at)


def gap_report(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> list[GapPublic]:
    """Every interval in [start, end) where a unit of this subtree has nobody in a duty role."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    _check_window(start, end)
    units = list(session.exec(select(Unit).where(unit_service.in_subtree(unit.path)).order_by(col(Unit.path))))
    return [
        GapPublic(unit_code=g.unit.code, unit_name=g.unit.name, role=g.role, start=g.start, end=g.end)
        for g in gaps(session, units=units, start=start, end=end)
    ]


def unit_timelines(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> tuple[Unit, dict[str, list[Segment]], dict[int, PersonBrief]]:
    """One unit's duty over [start, end) per role (gaps are segments without a person), and the people named."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    _check_window(start, end)
    assert unit.id is not None
    lines = timelines(session, units=[unit], start=start, end=end)
    by_role = {role: person_segments(lines[(unit.id, role)]) for role in DUTY_ROLES}
    ids = {s.person_id for segs in by_role.values() for s in segs if s.person_id is not None}
    people = {i: b for i, p in people_by_id(session, ids).items() if (b := brief(p)) is not None}
    return unit, by_role, people


def overrides_between(
    session: Session, *, actor: Principal, unit_code: str, start: datetime, end: datetime
) -> list[OverridePublic]:
    """The overrides of one unit that overlap [start, end), oldest first."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    rows = session.exec(
        select(Override)
        .where(Override.unit_id == unit.id, col(Override.starts_at) < end, col(Override.ends_at) > start)
        .order_by(col(Override.starts_at), col(Override.id))
    ).all()
    people = people_by_id(session, {r.person_id for r in rows})
    return [override_public(r, unit, people[r.person_id]) for r in rows]


# --- the board -----------------------------------------------------------------------------------------------------

BOARD_GAP_HORIZON = timedelta(hours=24)
BOARD_MAX_GAPS = 50


@dataclass(frozen=True)
class Post:
    """One duty post (a unit's duty officer or leader) as the board shows it."""

    unit_code: str
    unit_name: str
    role: str


@dataclass(frozen=True)
class HandoverView:
    """A handover note as the incoming shift reads it."""

    unit_code: str
    unit_name: str
    role: str
    at: datetime
    outgoing: PersonBrief
    incoming: PersonBrief | None
    notes: str
    open_items: list[str]


@dataclass(frozen=True)
class DutyBoard:
    """What the duty board shows for one unit at one instant, as seen by one signed-in person."""

    at: datetime
    focus: Unit
    chain: list[OnCallEntry]  # the focus unit first, up to the city
    below: list[OnCallEntry]  # the focus unit's direct children
    checked: dict[tuple[str, str, int], datetime]  # (unit code, role, person id) -> check-in time, this shift
    gaps: list[GapPublic]  # the next 24 hours, at most BOARD_MAX_GAPS (only for units the viewer covers)
    gap_total: int
    mine: list[Post]  # the posts the viewer holds now along their own chain
    check_in_due: list[Post]  # of those, the ones not yet checked in for this shift
    handovers: list[HandoverView] = field(default_factory=list)  # the focus unit's last note per role


def _readable(actor: Principal, unit: Unit) -> bool:
    return actor.covers(unit) or (actor.unit_path is not None and paths.below(actor.unit_path, unit.path))


def _posts_held(chain: list[OnCallEntry], person_id: int) -> list[Post]:
    return [
        Post(e.unit_code, e.unit_name, role)
        for e in chain
        for role in DUTY_ROLES
        if (p := getattr(e, role)) is not None and p.id == person_id
    ]


def last_handovers(session: Session, *, actor: Principal, unit: Unit) -> list[HandoverView]:
    """The most recent handover note of each duty role at this unit (newest first)."""
    may_read(actor, unit)
    out: list[HandoverView] = []
    for role in DUTY_ROLES:
        note = session.exec(
            select(HandoverNote)
            .where(HandoverNote.unit_id == unit.id, HandoverNote.role == role)
            .order_by(col(HandoverNote.at).desc(), col(HandoverNote.id).desc())
            .limit(1)
        ).first()
        if note is None:
            continue
        people = people_by_id(session, {note.from_person_id} | ({note.to_person_id} if note.to_person_id else set()))
        outgoing = brief(people[note.from_person_id])
        assert outgoing is not None
        out.append(
            HandoverView(
                unit_code=unit.code,
                unit_name=unit.name,
                role=role,
                at=note.at,
                outgoing=outgoing,
                incoming=brief(people.get(note.to_person_id)) if note.to_person_id else None,
                notes=note.notes,
                open_items=list(note.open_items),
            )
        )
    return sorted(out, key=lambda h: h.at, reverse=True)


def duty_board(session: Session, *, actor: Principal, person: Person, unit_code: str, at: datetime) -> DutyBoard:
    """The board for `unit_code` at `at`: its chain, the units below, check-ins, gaps ahead, the viewer's posts
    (and which still need a check-in), and the last handover notes."""
    focus = unit_service.get(session, unit_code, field="unit")
    chain = oncall_chain(session, actor=actor, unit_code=focus.code, at=at)
    children = session.exec(select(Unit).where(Unit.parent_id == focus.id).order_by(col(Unit.path))).all()
    # Only the children the viewer may read: a street looking at its district sees itself, not its siblings.
    below = _entries(session, [u for u in children if _readable(actor, u)], at)
    home = session.get(Unit, person.unit_id)
    assert home is not None and person.id is not None
    own_chain = chain if home.code == focus.code else oncall_chain(session, actor=actor, unit_code=home.code, at=at)
    codes = {e.unit_code for e in chain + below + own_chain}
    checked = practice.current_check_ins(session, actor=actor, unit_codes=sorted(codes), at=at)
    found: list[GapPublic] = []
    if actor.covers(focus):
        found = gap_report(session, actor=actor, unit_code=focus.code, start=at, end=at + BOARD_GAP_HORIZON)
    mine = _posts_held(own_chain, person.id)
    due = [p for p in mine if (p.unit_code, p.role, person.id) not in checked] if actor.can("shifts:write") else []
    return DutyBoard(
        at=at,
        focus=focus,
        chain=chain,
        below=below,
        checked=checked,
        gaps=found[:BOARD_MAX_GAPS],
        gap_total=len(found),
        mine=mine,
        check_in_due=due,
        handovers=last_handovers(session, actor=actor, unit=focus),
    )


# --- one unit's month ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A piece of one role's duty within one day, with its wall-clock times in the unit's zone."""

    start: datetime
    end: datetime
    wall_start: datetime
    wall_end: datetime
    person: PersonBrief | None
    source: str | None
    whole_day: bool  # from midnight to midnight: shown as 全天 rather than 00:00–00:00


@dataclass(frozen=True)
class Day:
    date: date
    cells: dict[str, list[Cell]]  # role -> the day's pieces, in order

    @property
    def gap(self) -> bool:
        return any(c.person is None for pieces in self.cells.values() for c in pieces)


@dataclass(frozen=True)
class MonthGrid:
    unit: Unit
    zone: ZoneInfo
    first: date
    start: datetime
    end: datetime
    days: list[Day]
    overrides: list[OverridePublic]

    @property
    def month(self) -> str:
        return self.first.strftime("%Y-%m")

    @property
    def prev_month(self) -> str:
        return (self.first - timedelta(days=1)).strftime("%Y-%m")

    @property
    def next_month(self) -> str:
        return (self.first + timedelta(days=32)).strftime("%Y-%m")

    @property
    def gap_days(self) -> int:
        return sum(1 for d in self.days if d.gap)


def _first_of_month(month: str | None, now: datetime, zone: ZoneInfo) -> date:
    if month:
        try:
            return date.fromisoformat(month + "-01")
        except ValueError as exc:
            raise Invalid.field("month", "use YYYY-MM") from exc
    return now.astimezone(zone).date().replace(day=1)


def month_grid(session: Session, *, actor: Principal, unit_code: str, month: str | None, now: datetime) -> MonthGrid:
    """One unit's duty for a calendar month (the current one by default), day by day and role by role, the
    month and its days cut in the unit's own zone (as the CSV export cuts them)."""
    unit = unit_service.get(session, unit_code, field="unit")
    may_read(actor, unit)
    zone = zone_of(unit)
    first = _first_of_month(month, now, zone)
    following = first + timedelta(days=monthrange(first.year, first.month)[1])
    start = wall_to_utc(datetime.combine(first, time()), zone)
    end = wall_to_utc(datetime.combine(following, time()), zone)
    _, by_role, people = unit_timelines(session, actor=actor, unit_code=unit.code, start=start, end=end)
    days = []
    day = first
    while day < following:
        day_start = wall_to_utc(datetime.combine(day, time()), zone)
        day_end = wall_to_utc(datetime.combine(day + timedelta(days=1), time()), zone)
        cells: dict[str, list[Cell]] = {}
        for role in DUTY_ROLES:
            pieces = []
            for s in by_role[role]:
                if s.start < day_end and s.end > day_start:
                    a, b = max(s.start, day_start), min(s.end, day_end)
                    pieces.append(
                        Cell(
                            start=a,
                            end=b,
                            wall_start=a.astimezone(zone),
                            wall_end=b.astimezone(zone),
                            person=people.get(s.person_id) if s.person_id is not None else None,
                            source=s.source,
                            whole_day=a == day_start and b == day_end,
                        )
                    )
            cells[role] = pieces
        days.append(Day(date=day, cells=cells))
        day += timedelta(days=1)
    overrides = overrides_between(session, actor=actor, unit_code=unit.code, start=start, end=end)
    return MonthGrid(unit=unit, zone=zone, first=first, start=start, end=end, days=days, overrides=overrides)
