"""Reporting hazards and reading the register. Transitions are in app.hazards.lifecycle, photos in
app.hazards.photos, lists in and out in app.hazards.lists, statistics in app.hazards.stats."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, text
from sqlmodel import Session, col, func, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Invalid, NotFound
from app.hazards import categories
from app.hazards.models import Hazard, HazardEntry, Level, Status
from app.hazards.schemas import HazardCreate
from app.org import units as unit_service
from app.org.models import Tier, Unit
from app.roster.resolve import zone_of
from app.roster.timeline import wall_to_utc

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L look-alikes, as incident codes
CODE_PREFIX = "H"  # hazard codes are 7 characters, incident codes 4: an SMS reply's code says which it is
CODE_LENGTH = 6
# Statuses in which a passed deadline counts as overdue: a submitted hazard waits on its verifiers, not its owner.
CHASED_STATUSES = (Status.open, Status.rectifying)
FOUND_AT_SKEW = timedelta(minutes=10)


def new_code() -> str:
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def unique_codes(session: Session, count: int) -> list[str]:
    """`count` fresh codes, none of them in use (31**6 ≈ 887 million: a clash is rare and simply redrawn)."""
    codes: set[str] = set()
    while len(codes) < count:
        wanted = {new_code() for _ in range(count - len(codes))} - codes
        taken = set(session.exec(select(Hazard.code).where(col(Hazard.code).in_(wanted))).all())
        codes |= wanted - taken
    return list(codes)


def due_instant(deadline: date, unit: Unit) -> datetime:
    """The instant a local-date deadline has passed: the next midnight in the unit's zone."""
    return wall_to_utc(datetime.combine(deadline + timedelta(days=1), time()), zone_of(unit))


def local_today(unit: Unit, now: datetime) -> date:
    return now.astimezone(zone_of(unit)).date()


def place(unit: Unit) -> tuple[str, str | None, str | None]:
    """The hazard's place on the tree as plain columns (city, district, street codes; see Hazard)."""
    parts = unit.path.split("/")
    return parts[0], parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None


def place_filter(unit: Unit) -> Any:
    """A WHERE clause for the hazards at or below a unit, by equality on an indexed column."""
    parts = unit.path.split("/")
    if len(parts) == 1:
        return col(Hazard.city_code) == parts[0]
    if len(parts) == 2:
        return col(Hazard.district_code) == parts[1]
    return col(Hazard.street_code) == parts[2]


def note(
    session: Session,
    hazard: Hazard,
    *,
    at: datetime,
    kind: str,
    actor: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> HazardEntry:
    """An entry on the hazard's timeline, in the caller's transaction."""
    entry = HazardEntry(**entry_row(hazard, at=at, kind=kind, actor=actor, message=message, data=data))
    session.add(entry)
    return entry


def entry_row(
    hazard: Hazard, *, at: datetime, kind: str, actor: str, message: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A timeline entry's column values (for a batch that writes rows, see app.escalation.paging.Pager.later)."""
    assert hazard.id is not None
    return {"hazard_id": hazard.id, "at": at, "kind": kind, "actor": actor, "message": message[:1000], "data": data}


def snapshot(hazard: Hazard) -> dict[str, Any]:
    """What the audit log keeps of a hazard before and after a change."""
    return {
        "code": hazard.code,
        "status": hazard.status,
        "level": hazard.level,
        "deadline": hazard.deadline.isoformat(),
        "listed_tier": hazard.listed_tier,
        "plan_measures": hazard.plan_measures,
        "plan_person": hazard.plan_person,
        "plan_funds_cny": hazard.plan_funds_cny,
        "failed_verifications": hazard.failed_verifications,
    }


@dataclass
class Checked:
    """A report that passed every check: the row to write and its unit."""

    data: HazardCreate
    unit: Unit


def check(actor: Principal, data: HazardCreate, unit: Unit | None, *, now: datetime, prefix: str = "") -> Checked:
    """Every rule a report must meet beyond its shape; Invalid/Forbidden naming the field (with `prefix`)."""
    if unit is None:
        raise Invalid.field(f"{prefix}unit_code", f"unknown unit {data.unit_code}")
    if unit.tier == Tier.city:
        raise Invalid.field(f"{prefix}unit_code", "a hazard belongs to a street/township or a district, not the city")
    authorize(actor, "hazards:write", unit)
    if data.level == Level.major and not data.basis.strip():
        raise Invalid.field(f"{prefix}basis", "a major hazard needs its basis (判定依据)")
    if data.venue_category not in categories.current():
        raise Invalid.field(
            f"{prefix}venue_category",
            f"unknown category {data.venue_category!r}; one of {', '.join(categories.current())}",
        )
    if data.found_at > now + FOUND_AT_SKEW:
        raise Invalid.field(f"{prefix}found_at", "is in the future")
    found_day = data.found_at.astimezone(zone_of(unit)).date()
    if data.deadline < found_day:
        raise Invalid.field(f"{prefix}deadline", f"{data.deadline} is before found_at ({found_day})")
    return Checked(data, unit)


def build(checked: Checked, *, code: str, actor: Principal, now: datetime) -> Hazard:
    data, unit = checked.data, checked.unit
    assert unit.id is not None
    city, district, street = place(unit)
    return Hazard(
        code=code,
        unit_id=unit.id,
        unit_path=unit.path,
        city_code=city,
        district_code=district,
        street_code=street,
        venue=data.venue.strip(),
        venue_category=data.venue_category,
        address=data.address.strip(),
        description=data.description,
        level=data.level,
        basis=data.basis.strip(),
        found_at=data.found_at,
        source=data.source,
        responsible_org=data.responsible_org.strip(),
        responsible_person=data.responsible_person.strip(),
        responsible_phone=data.responsible_phone,
        deadline=data.deadline,
        due_at=due_instant(data.deadline, unit),
        measures=data.measures,
        status=Status.open,
        reported_by=actor.actor,
        created_at=now,
        updated_at=now,
    )


def on_reported(session: Session, *, clock: Clock, actor: Principal, hazard: Hazard, unit: Unit) -> None:
    """The timeline entry and audit row of a new hazard (its chase is planned by the caller)."""
    level = "重大" if hazard.level == Level.major else "一般"
    note(
        session,
        hazard,
        at=clock.now(),
        kind="reported",
        actor=actor.actor,
        message=f"{unit.name}登记{level}隐患：{hazard.venue}（{categories.name(hazard.venue_category)}），"
        f"整改期限{hazard.deadline.isoformat()}",
        data={"level": hazard.level, "deadline": hazard.deadline.isoformat(), "source": hazard.source},
    )
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="hazard.create",
        object_type="hazard",
        object_id=hazard.id,
        unit_path=unit.path,
        after=snapshot(hazard),
    )


def report(session: Session, *, clock: Clock, actor: Principal, data: HazardCreate) -> tuple[Hazard, Unit]:
    """Register a hazard found in a unit within the actor's subtree (201 with its code)."""
    from app.hazards import chase  # the chase plans from the written row; imported here to keep the graph acyclic

    authorize(actor, "hazards:write")
    unit = session.exec(select(Unit).where(Unit.code == data.unit_code)).first()
    now = clock.now()
    checked = check(actor, data, unit, now=now)
    hazard = build(checked, code=unique_codes(session, 1)[0], actor=actor, now=now)
    session.add(hazard)
    session.flush()
    on_reported(session, clock=clock, actor=actor, hazard=hazard, unit=checked.unit)
    chase.plan(session, clock=clock, hazard=hazard, unit=checked.unit)
    session.flush()
    return hazard, checked.unit


def lock(session: Session, *, actor: Principal, hazard_id: int) -> tuple[Hazard, Unit]:
    """The hazard, locked for a transition, if the actor may see it (otherwise 404: ids are not to be probed)."""
    hazard = session.exec(select(Hazard).where(Hazard.id == hazard_id).with_for_update()).first()
    return _visible(session, actor, hazard, hazard_id)


def get(session: Session, *, actor: Principal, hazard_id: int) -> tuple[Hazard, Unit]:
    return _visible(session, actor, session.get(Hazard, hazard_id), hazard_id)


def _visible(session: Session, actor: Principal, hazard: Hazard | None, hazard_id: int) -> tuple[Hazard, Unit]:
    unit = session.get(Unit, hazard.unit_id) if hazard is not None else None
    if hazard is None or unit is None or not actor.covers(unit) or not actor.can("hazards:read"):
        raise NotFound(f"no hazard with id {hazard_id}")
    return hazard, unit


@dataclass(frozen=True)
class Filters:
    """The register's filters, shared by the list, the export and the console."""

    unit: Unit | None = None
    status: Status | None = None
    level: Level | None = None
    category: str | None = None
    overdue: bool | None = None


def scope_root(session: Session, actor: Principal, unit: Unit | None) -> Unit | None:
    """The unit whose subtree is read: the one asked for (within scope), or the actor's own (None: everything)."""
    if unit is not None:
        authorize(actor, "hazards:read", unit)
        return unit
    authorize(actor, "hazards:read")
    return session.get(Unit, actor.unit_id) if actor.unit_id is not None else None


def conditions(session: Session, *, actor: Principal, filters: Filters, now: datetime) -> list[Any]:
    """The WHERE clauses of the hazards that pass the filters within the actor's scope."""
    root = scope_root(session, actor, filters.unit)
    where: list[Any] = []
    if root is not None:
        where.append(place_filter(root))
    if filters.status is not None:
        where.append(col(Hazard.status) == filters.status)
    if filters.level is not None:
        where.append(col(Hazard.level) == filters.level)
    if filters.category is not None:
        if filters.category not in categories.current():
            raise Invalid.field("category", f"unknown category {filters.category!r}")
        where.append(col(Hazard.venue_category) == filters.category)
    if filters.overdue is True:
        where.append(overdue_clause(now))
    elif filters.overdue is False:
        where.append(~overdue_clause(now))
    return where


# Written out, not bound: the planner matches a partial index's predicate only against literal values.
CHASED_SQL = "hazard.status IN ('open', 'rectifying')"


def overdue_clause(now: datetime) -> Any:
    """Chased (open or rectifying) and past due: matches the partial index ix_hazard_chased_due."""
    return and_(text(CHASED_SQL), col(Hazard.due_at) <= now)


def query(session: Session, *, actor: Principal, filters: Filters, now: datetime) -> Any:
    """The SELECT of the hazards that pass the filters within the actor's scope (not yet ordered)."""
    return select(Hazard).where(*conditions(session, actor=actor, filters=filters, now=now))


def _count(session: Session, where: list[Any]) -> int:
    return int(session.exec(select(func.count()).select_from(Hazard).where(*where)).one())


def listing(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    filters: Filters,
    limit: int,
    offset: int,
    overdue_first: bool = False,
) -> tuple[list[Hazard], int]:
    """A page of the register, newest first (or the overdue first, oldest deadline first, then the rest newest
    first), with the total count.

    Overdue first is two index walks rather than one sort of the whole scope by an expression: the overdue part in
    deadline order (the partial index on due_at), then the rest by id; a city's page stays a few milliseconds."""
    now = clock.now()
    where = conditions(session, actor=actor, filters=filters, now=now)
    total = _count(session, where)
    if not overdue_first or filters.overdue is not None:
        order = [col(Hazard.due_at), col(Hazard.id).desc()] if overdue_first else [col(Hazard.id).desc()]
        rows = session.exec(select(Hazard).where(*where).order_by(*order).offset(offset).limit(limit)).all()
        return list(rows), total
    found: list[Hazard] = list(
        session.exec(
            select(Hazard)
            .where(*where, overdue_clause(now))
            .order_by(col(Hazard.due_at), col(Hazard.id).desc())
            .offset(offset)
            .limit(limit)
        ).all()
    )
    if len(found) < limit:
        # Where the rest starts: past all the overdue ones (counted only when this page is not the first).
        late = offset + len(found) if found or offset == 0 else _count(session, [*where, overdue_clause(now)])
        found += session.exec(
            select(Hazard)
            .where(*where, ~overdue_clause(now))
            .order_by(col(Hazard.id).desc())
            .offset(max(0, offset - late))
            .limit(limit - len(found))
        ).all()
    return found, total


def is_overdue(hazard: Hazard, now: datetime) -> bool:
    return hazard.status in CHASED_STATUSES and hazard.due_at <= now


def units_of(session: Session, hazards: Iterable[Hazard]) -> dict[int, Unit]:
    ids = {h.unit_id for h in hazards} | {h.listed_unit_id for h in hazards if h.listed_unit_id is not None}
    return unit_service.codes_by_id(session, ids)


def timeline(session: Session, hazard: Hazard) -> Sequence[HazardEntry]:
    return session.exec(
        select(HazardEntry).where(HazardEntry.hazard_id == hazard.id).order_by(col(HazardEntry.id))
    ).all()
