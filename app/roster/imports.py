"""Monthly duty tables as CSV: import (all or nothing, with every bad row named) and export (the same shape back).

Columns: unit_code, role, date | start,end, person (username or phone); person_name and unit_name are for people
reading the file and are ignored on import. A `date` row is the 24 hours from that day's handoff (default 08:30) in
the unit's zone; `start`/`end` are ISO 8601, with an offset or in the unit's zone. An imported row replaces the
explicit shifts of its unit and role that it overlaps; a row identical to a stored shift changes nothing, so
exporting and importing again is a no-op.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any

from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import FieldError, Invalid
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster import service as roster_service
from app.roster.models import DUTY_ROLES, MAX_COVER, Shift
from app.roster.resolve import zone_of
from app.roster.schemas import ImportResult
from app.roster.timeline import wall_to_utc

COLUMNS = ["unit_code", "unit_name", "role", "date", "start", "end", "person", "person_name"]
INFORMATIONAL = {"unit_name", "person_name"}
MAX_ROWS = 50_000
MAX_ERRORS = 100


@dataclass
class Row:
    line: int
    unit: Unit
    role: str
    person: Person
    start: datetime
    end: datetime


def _instant(text: str, unit: Unit) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1) if "T" not in text else text.strip())
    if value.tzinfo is None:
        return wall_to_utc(value, zone_of(unit))
    return value


def parse(session: Session, *, actor: Principal, text: str, handoff: time) -> tuple[list[Row], list[FieldError]]:
    try:
        return _parse(session, actor=actor, text=text, handoff=handoff)
    except csv.Error as exc:  # a stray carriage return, a field past the csv module's limit: a 422, not a 500
        raise Invalid.field("file", f"not a readable CSV: {exc}") from exc


def _parse(session: Session, *, actor: Principal, text: str, handoff: time) -> tuple[list[Row], list[FieldError]]:
    # Universal newlines: a table saved with old Mac line ends (a lone \r) reads as lines, not as one bad field.
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=None))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    problems: list[FieldError] = []
    unknown = [h for h in header if h not in COLUMNS]
    missing = [h for h in ("unit_code", "role", "person") if h not in header]
    if not header:
        raise Invalid.field("file", "empty file; the first line must name the columns")
    if unknown or missing or not ("date" in header or {"start", "end"} <= set(header)):
        why = []
        if missing:
            why.append(f"missing {', '.join(missing)}")
        if unknown:
            why.append(f"unknown {', '.join(unknown)}")
        if not ("date" in header or {"start", "end"} <= set(header)):
            why.append("needs a date column or start and end columns")
        raise Invalid.field("header", "; ".join(why) + f" (columns: {', '.join(COLUMNS)})")

    units = {u.code: u for u in session.exec(select(Unit))}
    # A monthly table names the same few people on every row: look each (person, unit) up once.
    checked: dict[tuple[str, str], Person | str] = {}
    rows: list[Row] = []
    for record in reader:
        line = reader.line_num
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if not any(values.values()):
            continue
        if len(rows) + len(problems) >= MAX_ROWS:
            raise Invalid.field("file", f"at most {MAX_ROWS} rows per file")

        def bad(column: str, message: str, line: int = line) -> None:
            problems.append(FieldError(f"rows[{line}].{column}", f"line {line}: {message}"))

        before = len(problems)
        unit = units.get(values.get("unit_code", ""))
        if unit is None:
            bad("unit_code", f"unknown unit {values.get('unit_code')!r}")
        elif not actor.covers(unit):
            bad("unit_code", f"{unit.code} {unit.name} is outside your scope")
        role = values.get("role", "")
        if role not in DUTY_ROLES:
            bad("role", f"{role!r} is not one of {', '.join(DUTY_ROLES)}")
        ref = values.get("person", "")
        person = None
        if not ref:
            bad("person", "a username or phone is required")
        elif unit is not None:
            if (ref, unit.code) not in checked:
                try:
                    checked[(ref, unit.code)] = roster_service.rosterable(session, unit=unit, ref=ref, field="person")
                except Invalid as exc:
                    checked[(ref, unit.code)] = exc.fields[0].message if exc.fields else exc.message
            found = checked[(ref, unit.code)]
            if isinstance(found, str):
                bad("person", found)
            else:
                person = found
        start = end = None
        day, s_text, e_text = values.get("date", ""), values.get("start", ""), values.get("end", "")
        if day and (s_text or e_text):
            bad("date", "give either date or start and end, not both")
        elif day:
            try:
                d = date.fromisoformat(day)
            except ValueError:
                bad("date", f"{day!r} is not a date (YYYY-MM-DD)")
            else:
                if unit is not None:
                    start = wall_to_utc(datetime.combine(d, handoff), zone_of(unit))
                    end = wall_to_utc(datetime.combine(d + timedelta(days=1), handoff), zone_of(unit))
        elif unit is not None:
            for column, raw in (("start", s_text), ("end", e_text)):
                if not raw:
                    bad(column, "required when there is no date")
                    continue
                try:
                    value = _instant(raw, unit)
                except ValueError:
                    bad(column, f"{raw!r} is not an ISO 8601 time (e.g. 2026-05-01T08:30:00+08:00)")
                    continue
                if column == "start":
                    start = value
                else:
                    end = value
            if start is not None and end is not None:
                if end <= start:
                    bad("end", "must be after start")
                elif end - start > MAX_COVER:
                    bad("end", "a shift may last at most 31 days")
        if len(problems) == before and unit is not None and person is not None and start and end:
            rows.append(Row(line, unit, role, person, start, end))
    if len(problems) > MAX_ERRORS:
        problems = problems[:MAX_ERRORS]

    by_key: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for r in rows:
        assert r.unit.id is not None
        by_key[(r.unit.id, r.role)].append(r)
    for group in by_key.values():
        group.sort(key=lambda r: r.start)
        for prev, cur in pairwise(group):
            if cur.start < prev.end:
                problems.append(
                    FieldError(
                        f"rows[{cur.line}].start",
                        f"line {cur.line}: overlaps line {prev.line} for the same unit and role",
                    )
                )
    return rows, problems


def import_csv(session: Session, *, clock: Clock, actor: Principal, text: str, handoff: time) -> ImportResult:
    """Validate every row, then store them all (or nothing: the 422 names each bad row and column)."""
    authorize(actor, "rosters:write")
    rows, problems = parse(session, actor=actor, text=text, handoff=handoff)
    if problems:
        raise Invalid(
            f"{len(problems)} problem(s) in the file; nothing was imported. First: {problems[0].message}",
            fields=problems[:MAX_ERRORS],
        )
    if not rows:
        raise Invalid.field("file", "no rows to import")
    start, end = min(r.start for r in rows), max(r.end for r in rows)
    unit_ids = {r.unit.id for r in rows}
    existing: dict[tuple[int, str], list[Shift]] = defaultdict(list)
    for s in session.exec(
        select(Shift).where(col(Shift.unit_id).in_(unit_ids), col(Shift.starts_at) < end, col(Shift.ends_at) > start)
    ):
        existing[(s.unit_id, s.role)].append(s)
    created: list[Shift] = []
    removed: list[dict[str, Any]] = []
    unchanged = 0
    now = clock.now()
    gone: set[int] = set()
    for r in rows:
        assert r.unit.id is not None and r.person.id is not None
        clash = [
            s for s in existing[(r.unit.id, r.role)] if s.id not in gone and s.starts_at < r.end and s.ends_at > r.start
        ]
        if len(clash) == 1 and (clash[0].person_id, clash[0].starts_at, clash[0].ends_at) == (
            r.person.id,
            r.start,
            r.end,
        ):
            unchanged += 1
            continue
        for s in clash:
            assert s.id is not None
            gone.add(s.id)
            removed.append(
                {
                    "id": s.id,
                    "unit_id": s.unit_id,
                    "role": s.role,
                    "person_id": s.person_id,
                    "starts_at": s.starts_at.isoformat(),
                }
            )
            session.delete(s)
        shift = Shift(
            unit_id=r.unit.id,
            role=r.role,
            person_id=r.person.id,
            starts_at=r.start,
            ends_at=r.end,
            source="import",
            created_at=now,
        )
        session.add(shift)
        created.append(shift)
    session.flush()
    paths = [r.unit.path.split("/") for r in rows]
    common = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="roster.import",
        object_type="shift",
        object_id=f"import:{len(rows)}",
        unit_path="/".join(common) or None,
        before={"replaced": removed[:500]} if removed else None,
        after={
            "rows": len(rows),
            "created": len(created),
            "unchanged": unchanged,
            "shift_ids": [s.id for s in created][:500],
        },
    )
    return ImportResult(rows=len(rows), created=len(created), unchanged=unchanged, replaced=len(removed))


def _month(month: str) -> tuple[date, date]:
    try:
        first = date.fromisoformat(month + "-01")
    except ValueError as exc:
        raise Invalid.field("month", f"{month!r} is not a month (YYYY-MM)") from exc
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following


def export_csv(session: Session, *, actor: Principal, unit_code: str, month: str) -> str:
    """The explicit shifts starting in `month` (the unit's zone) for a unit and its subtree, as importable CSV."""
    unit = unit_service.get(session, unit_code, field="unit")
    roster_service.may_read(actor, unit)
    first, following = _month(month)
    zone = zone_of(unit)
    start = wall_to_utc(datetime.combine(first, time()), zone)
    end = wall_to_utc(datetime.combine(following, time()), zone)
    rows = session.exec(
        select(Shift, Unit, Person)
        .join(Unit, col(Unit.id) == col(Shift.unit_id))
        .join(Person, col(Person.id) == col(Shift.person_id))
        .where(unit_service.in_subtree(unit.path), col(Shift.starts_at) >= start, col(Shift.starts_at) < end)
        .order_by(col(Unit.path), col(Shift.role), col(Shift.starts_at))
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for shift, u, person in rows:
        z = zone_of(u)
        writer.writerow(
            [
                u.code,
                u.name,
                shift.role,
                "",
                shift.starts_at.astimezone(z).isoformat(),
                shift.ends_at.astimezone(z).isoformat(),
                person.username or person.phone,
                person.name,
            ]
        )
    return out.getvalue()
