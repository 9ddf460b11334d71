"""Who is acting, and the one place that decides whether they may act on a unit (属地)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from app.errors import Forbidden
from app.org import paths
from app.org.models import Role, Unit

# What each role may do. API keys carry their permissions directly as scopes.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.admin: frozenset(
        {
            "units:read",
            "people:read",
            "people:write",
            "agencies:read",
            "agencies:write",
            "rosters:read",
            "rosters:write",
            "incidents:read",
            "incidents:write",
            "incidents:ack",
            "incidents:grade",
            "rules:read",
            "rules:write",
            "audit:read",
            "webhooks:read",
            "webhooks:write",
            "shifts:write",
            "rollcalls:read",
            "rollcalls:write",
            "notices:read",
            "notices:write",
            "notices:sign",
            "instructions:write",
            "warnings:write",
            "hazards:read",
            "reports:read",
            "hazards:write",
            "hazards:verify",
            "robots:read",
            "robots:write",
        }
    ),
    Role.unit_admin: frozenset(
        {
            "units:read",
            "people:read",
            "people:write",
            "rosters:read",
            "rosters:write",
            "incidents:read",
            "rules:read",
            "rollcalls:read",
            "rollcalls:write",
            "notices:read",
            "notices:write",
            "notices:sign",
            "hazards:read",
            "reports:read",
            "hazards:write",
            "hazards:verify",
            "robots:read",
            "robots:write",
        }
    ),
    Role.duty_officer: frozenset(
        {
            "units:read",
            "people:read",
            "rosters:read",
            "incidents:read",
            "incidents:write",
            "incidents:ack",
            "shifts:write",
            "rules:read",
            "rollcalls:read",
            "rollcalls:write",
            "notices:read",
            "notices:write",
            "notices:sign",
            "hazards:read",
            "reports:read",
        }
    ),
    Role.leader: frozenset(
        {
            "units:read",
            "people:read",
            "rosters:read",
            "incidents:read",
            "incidents:write",
            "incidents:ack",
            "incidents:grade",
            "shifts:write",
            "rules:read",
            "rollcalls:read",
            "rollcalls:write",
            "notices:read",
            "notices:write",
            "notices:sign",
            "instructions:write",
            "hazards:read",
            "reports:read",
            "hazards:verify",
        }
    ),
    Role.viewer: frozenset(
        {
            "units:read",
            "people:read",
            "rosters:read",
            "incidents:read",
            "rules:read",
            "rollcalls:read",
            "notices:read",
            "hazards:read",
            "reports:read",
        }
    ),
    # Inspectors (排查人员) find and register hazards and follow their rectification; they verify nothing.
    Role.inspector: frozenset({"units:read", "rosters:read", "hazards:read", "hazards:write"}),
}

API_KEY_SCOPES = frozenset(
    {
        "incidents:write",
        "incidents:read",
        "heartbeats:write",
        "webhooks:read",
        "webhooks:write",
        "units:read",
        # An early-warning system posting CAP alerts (POST /api/v1/warnings/cap), and reading what became of them.
        "warnings:write",
        "notices:read",
    }
)

# A role may only be granted by someone whose own roles rank at least as high.
ROLE_RANK: dict[str, int] = {
    Role.viewer: 0,
    Role.inspector: 1,
    Role.duty_officer: 1,
    Role.leader: 1,
    Role.unit_admin: 2,
    Role.admin: 3,
}


def permissions_for_roles(roles: Iterable[str]) -> frozenset[str]:
    perms: set[str] = set()
    for role in roles:
        perms |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(perms)


@dataclass(frozen=True)
class Principal:
    kind: Literal["person", "agency", "system"]
    id: int | None
    label: str
    permissions: frozenset[str]
    # The root of the subtree this principal may act in; None means the whole tree.
    unit_id: int | None = None
    unit_code: str | None = None
    unit_path: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    # How a person reads this principal, when its sign-in already read it (an agency's name); None: look it up.
    name: str | None = None

    @classmethod
    def system(cls, label: str = "system") -> Principal:
        perms = frozenset().union(*ROLE_PERMISSIONS.values()) | API_KEY_SCOPES
        return cls(kind="system", id=None, label=label, permissions=perms, roles=frozenset({Role.admin}))

    @property
    def actor(self) -> str:
        """How the audit log and timelines name this principal."""
        return self.label

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def covers(self, unit: Unit) -> bool:
        if self.unit_path is None:
            return True
        return paths.within(unit.path, self.unit_path)

    @property
    def covers_whole_tree(self) -> bool:
        return self.unit_path is None or "/" not in self.unit_path

    def max_rank(self) -> int:
        return max((ROLE_RANK.get(r, -1) for r in self.roles), default=-1)


def authorize(principal: Principal, permission: str, unit: Unit | None = None) -> None:
    """Every write (and every scoped read) passes here: the permission, then the unit's subtree."""
    if not principal.can(permission):
        raise Forbidden(f"{principal.actor} lacks the permission {permission!r}")
    if unit is not None and not principal.covers(unit):
        raise Forbidden(f"unit {unit.code} ({unit.name}) is outside the scope of {principal.actor}")


def authorize_whole_tree(principal: Principal, permission: str) -> None:
    """For objects tied to no unit (a citywide agency): only a principal over the whole tree may act."""
    authorize(principal, permission)
    if not principal.covers_whole_tree:
        raise Forbidden(f"only city-level principals may do this; {principal.actor} is scoped to {principal.unit_code}")


def authorize_role_grant(principal: Principal, roles: Iterable[str]) -> None:
    """Nobody hands out a role above their own (a unit_admin cannot make an admin)."""
    if principal.kind == "system":
        return
    top = principal.max_rank()
    for role in roles:
        if ROLE_RANK.get(role, 99) > top:
            raise Forbidden(f"{principal.actor} may not grant the role {role!r}")
