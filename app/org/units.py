"""The division tree: loading it from the JSON data set, and looking units up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, func, select

from app.errors import FieldError, Invalid, NotFound
from app.org import paths
from app.org.models import TIER_DEPTH, Tier, Unit


def default_data_path() -> Path:
    return Path(str(resources.files("app.org") / "data" / "beijing-divisions.json"))


@dataclass(frozen=True)
class LoadResult:
    created: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def read_units_file(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise Invalid.field("file", f"{path} does not exist") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid.field("file", f"{path} is not JSON: {exc}") from exc
    units = document.get("units") if isinstance(document, dict) else None
    if not isinstance(units, list) or not units:
        raise Invalid.field("units", "the file needs a non-empty 'units' list")
    return units


def _validate(rows: list[dict[str, Any]], known_codes: set[str]) -> list[dict[str, Any]]:
    errors: list[FieldError] = []
    seen: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        where = f"units[{i}]"
        if not isinstance(row, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        code, name, tier, parent = row.get("code"), row.get("name"), row.get("tier"), row.get("parent")
        if not isinstance(code, str) or not code.isdigit() or not 6 <= len(code) <= 12:
            errors.append(FieldError(f"{where}.code", "must be a 6 to 12 digit division code"))
            continue
        if code in seen:
            errors.append(FieldError(f"{where}.code", f"{code} appears twice"))
        if not isinstance(name, str) or not name.strip():
            errors.append(FieldError(f"{where}.name", "must be a non-empty string"))
        if tier not in TIER_DEPTH:
            errors.append(FieldError(f"{where}.tier", f"must be one of {', '.join(TIER_DEPTH)}"))
        if (tier == Tier.city) != (parent is None):
            errors.append(FieldError(f"{where}.parent", "a city has no parent; every other unit has one"))
        seen[code] = row
    for i, row in enumerate(rows):
        parent = row.get("parent") if isinstance(row, dict) else None
        if parent is None:
            continue
        parent_row = seen.get(parent)
        if parent_row is None and parent not in known_codes:
            errors.append(FieldError(f"units[{i}].parent", f"unknown parent {parent}"))
        elif (
            parent_row is not None
            and TIER_DEPTH.get(str(parent_row.get("tier")), 9) != TIER_DEPTH.get(str(row.get("tier")), 0) - 1
        ):
            errors.append(FieldError(f"units[{i}].parent", f"{parent} is not one tier above"))
    if errors:
        raise Invalid(f"{len(errors)} problem(s) in the units file", fields=errors[:50])
    return sorted(seen.values(), key=lambda r: TIER_DEPTH[r["tier"]])


def load_units(session: Session, rows: list[dict[str, Any]]) -> LoadResult:
    """Insert or update units by code; existing ids are kept, so loading twice changes nothing."""
    existing = {u.code: u for u in session.exec(select(Unit)).all()}
    ordered = _validate(rows, set(existing))
    created = updated = unchanged = 0
    for row in ordered:
        parent = existing[row["parent"]] if row["parent"] else None
        path = f"{parent.path}/{row['code']}" if parent else row["code"]
        values = {
            "name": row["name"].strip(),
            "tier": row["tier"],
            "parent_id": parent.id if parent else None,
            "path": path,
        }
        unit = existing.get(row["code"])
        if unit is None:
            unit = Unit(code=row["code"], **values)
            session.add(unit)
            session.flush()
            existing[unit.code] = unit
            created += 1
        elif any(getattr(unit, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(unit, k, v)
            session.add(unit)
            updated += 1
        else:
            unchanged += 1
    session.flush()
    return LoadResult(created=created, updated=updated, unchanged=unchanged)


_BY_CODE = select(Unit).where(Unit.code == bindparam("code"))  # built once: every intake and page looks up units
_BY_CODES = select(Unit).where(col(Unit.code).in_(bindparam("codes", expanding=True)))


def get(session: Session, code: str, *, field: str | None = None) -> Unit:
    unit = session.exec(_BY_CODE, params={"code": code}).first()
    if unit is None:
        fields = [FieldError(field, f"unknown unit {code}")] if field else None
        raise NotFound(f"unknown unit {code}", fields=fields)
    return unit


def by_codes(session: Session, codes: list[str]) -> list[Unit]:
    return list(session.exec(_BY_CODES, params={"codes": codes}).all())


def chain_codes(unit: Unit) -> list[str]:
    """Codes from the root down to this unit."""
    return unit.path.split("/")


def chain(session: Session, unit: Unit) -> list[Unit]:
    """The unit and its ancestors, root first."""
    codes = chain_codes(unit)
    rows = {u.code: u for u in session.exec(select(Unit).where(col(Unit.code).in_(codes))).all()}
    return [rows[c] for c in codes if c in rows]


def in_subtree(root_path: str) -> Any:
    """A WHERE clause for the units at or below the unit with this path."""
    return paths.sql_within(col(Unit.path), root_path)


def listing(session: Session, *, tier: Tier | None, parent: Unit | None) -> list[Unit]:
    """Units of a tier (or all), below a parent unit at any depth (or everywhere), in tree order."""
    query = select(Unit)
    if tier is not None:
        query = query.where(Unit.tier == tier)
    if parent is not None:
        query = query.where(paths.sql_below(col(Unit.path), parent.path))
    return list(session.exec(query.order_by(col(Unit.path))).all())


def grouped_subtree(session: Session, root: Unit, *, above: bool = False) -> list[tuple[Unit, list[Unit]]]:
    """The root's subtree (and, with `above`, its ancestors first) for a unit picker, in tree order: grouped by the
    root's children when those have units of their own (a city: one group per district), else in one group."""
    units = list(session.exec(select(Unit).where(in_subtree(root.path)).order_by(col(Unit.path))).all())
    head = [u for u in chain(session, root) if u.code != root.code] if above else []
    depth = root.path.count("/")
    below = [u for u in units if u.code != root.code]
    if not any(u.path.count("/") > depth + 1 for u in below):
        return [(root, [*head, root, *below])]
    groups: list[tuple[Unit, list[Unit]]] = [(root, [*head, root])]
    for u in below:
        if u.path.count("/") == depth + 1:
            groups.append((u, [u]))
        else:
            groups[-1][1].append(u)
    return groups


def children_count(session: Session, unit: Unit) -> int:
    return session.exec(select(func.count()).select_from(Unit).where(Unit.parent_id == unit.id)).one()


def codes_by_id(session: Session, ids: set[int]) -> dict[int, Unit]:
    if not ids:
        return {}
    return {u.id: u for u in session.exec(select(Unit).where(col(Unit.id).in_(ids))).all() if u.id is not None}
