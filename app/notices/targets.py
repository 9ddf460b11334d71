"""Which units a roll-call or a notice reaches: the children or the subtree of a unit, some tiers, or a list."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.auth.principal import Principal
from app.errors import Forbidden, Invalid
from app.incidents.codes import ALPHABET
from app.org import paths
from app.org import units as unit_service
from app.org.models import Unit

CHILDREN = "children"
SUBTREE = "subtree"


def new_code(prefix: str) -> str:
    """A short code for SMS replies: one letter naming the kind, then four like an incident's (whose codes are
    four long, so the two never collide)."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(4))


def below(session: Session, root: Unit, *, scope: str | None, tiers: Sequence[str] = ()) -> list[Unit]:
    """Units strictly below `root`: its children or its whole subtree (`scope`), narrowed to `tiers` if given."""
    query = select(Unit)
    if scope == CHILDREN:
        query = query.where(Unit.parent_id == root.id)
    else:
        query = query.where(paths.sql_below(col(Unit.path), root.path))
    if tiers:
        query = query.where(col(Unit.tier).in_(list(tiers)))
    return list(session.exec(query.order_by(col(Unit.path))).all())


def resolve(
    session: Session,
    *,
    actor: Principal,
    root: Unit,
    scope: str | None,
    tiers: Sequence[str] = (),
    codes: Sequence[str] = (),
    field: str = "to",
) -> list[Unit]:
    """The receiving units: those of scope/tiers plus the listed ones, each strictly below `root` and inside the
    actor's subtree (403 otherwise); none at all is a 422."""
    found: dict[str, Unit] = {}
    if scope is not None or tiers:
        found.update({u.code: u for u in below(session, root, scope=scope, tiers=tiers)})
    if codes:
        listed = {u.code: u for u in unit_service.by_codes(session, list(codes))}
        unknown = [c for c in codes if c not in listed]
        if unknown:
            raise Invalid.field(f"{field}.units", f"unknown unit(s) {', '.join(unknown[:10])}")
        for unit in listed.values():
            if not paths.below(unit.path, root.path):
                raise Forbidden(f"unit {unit.code} ({unit.name}) is not below {root.code} ({root.name})")
            if not actor.covers(unit):
                raise Forbidden(f"unit {unit.code} ({unit.name}) is outside the scope of {actor.actor}")
            found[unit.code] = unit
    if not found:
        raise Invalid.field(field, f"no unit below {root.code} ({root.name}) matches: the scope is empty")
    return sorted(found.values(), key=lambda u: u.path)
