"""Refusals of the hazard register: a transition the state does not allow (409) or the role does not (403),
each naming the action and the state or the role."""

from __future__ import annotations

from app import labels
from app.errors import Conflict, Forbidden

ACTION_NAMES = labels.HAZARD_ACTIONS
ROLE_NAMES = labels.ROLES
STATUS_NAMES = labels.HAZARD_STATUSES


class StateRefused(Conflict):
    """The hazard's state does not allow the action."""

    code = "hazard_state"

    def __init__(
        self, *, action: str, status: str, allowed: tuple[str, ...], why: str | None = None, zh: str | None = None
    ) -> None:
        allowed_text = " or ".join(allowed)
        message = why or f"{action} is not allowed while the hazard is {status}; {action} needs {allowed_text}"
        super().__init__(message)
        self.action = action
        self.state = status
        name = ACTION_NAMES.get(action.split(" ")[0], action)
        self.zh = zh or f"隐患当前为“{STATUS_NAMES.get(status, status)}”，不能{name}"


class RoleRefused(Forbidden):
    """The actor's roles or place in the tree do not allow the action."""

    code = "hazard_role"

    def __init__(self, *, action: str, actor: str, roles: list[str], needs: str, zh: str) -> None:
        role_text = ", ".join(sorted(roles)) or "no role"
        super().__init__(f"{action} is not allowed for {actor} ({role_text}): {needs}")
        self.action = action
        roles_zh = "、".join(ROLE_NAMES.get(r, r) for r in sorted(roles)) or "无角色"
        self.zh = f"您的角色（{roles_zh}）不能{ACTION_NAMES.get(action, action)}：{zh}"
