"""What each tier of an incident is doing, and what the incident as a whole is: the one rule both are read by.

The incident's `status` moves to `acknowledged` at the first acknowledgement (the lifecycle of PRODUCT.md §2), so
it cannot say whether every tier that must sign has signed. The overall state can: an incident is `acknowledged`
only when every required tier has acknowledged; while one still owes its sign-off it is `partial` (some have) or
`pending` (none has). A tier whose chain ran out without an answer, so that the tier above was told (越级), is
`passed_over`: it still owes its acknowledgement, and the incident is not acknowledged while it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from app.incidents.models import IncidentTier, Status
from app.org.models import tier_above


class TierStatus(StrEnum):
    paging = "paging"  # must acknowledge and has not; its chain is running
    acknowledged = "acknowledged"
    passed_over = "passed_over"  # must acknowledge and has not; its chain ran out and the tier above was told
    informed = "informed"  # told, no acknowledgement needed
    idle = "idle"  # on the chain, not involved (yet)


class OverallState(StrEnum):
    pending = "pending"  # no required tier has acknowledged
    partial = "partial"  # some required tiers have acknowledged, not all
    acknowledged = "acknowledged"  # every required tier has acknowledged
    resolved = "resolved"
    closed = "closed"


# The step at which a tier's own chain is done and the tier above is told (app.escalation.steps.advance).
PASS_OVER_STEP = 2


def was_passed_over(row: IncidentTier, tiers: Sequence[str]) -> bool:
    """Whether the tier's chain ran out without its answer, so that the tier above was told (acknowledged since
    or not: the review and the accountability figures count it either way)."""
    above = tier_above(row.tier)
    return row.required and row.step >= PASS_OVER_STEP and above is not None and above in tiers


def tier_status(row: IncidentTier, tiers: Sequence[str]) -> TierStatus:
    """One tier's state; `tiers` are the tiers the incident's chain has (a tier with none above is never passed
    over: the city repeats its own pages)."""
    if row.acknowledged_at is not None:
        return TierStatus.acknowledged
    if row.required:
        return TierStatus.passed_over if was_passed_over(row, tiers) else TierStatus.paging
    return TierStatus.informed if row.informed else TierStatus.idle


def overall_state(status: str, rows: Sequence[IncidentTier]) -> OverallState:
    """The incident as a whole: resolved or closed by its status, otherwise by its required tiers' sign-offs."""
    if status == Status.closed:
        return OverallState.closed
    if status == Status.resolved:
        return OverallState.resolved
    required = [r for r in rows if r.required]
    signed = [r for r in required if r.acknowledged_at is not None]
    if required and len(signed) == len(required):
        return OverallState.acknowledged
    return OverallState.partial if signed else OverallState.pending
