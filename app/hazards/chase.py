"""The deadline chase of a hazard, planned on the shared chase mechanism of app.escalation (see COORDINATION)."""

from __future__ import annotations

from sqlmodel import Session

from app.clock import Clock
from app.hazards.models import Hazard
from app.org.models import Unit


def plan(session: Session, *, clock: Clock, hazard: Hazard, unit: Unit) -> None:
    """Plan the chase of a new hazard."""
    replan(session, clock=clock, hazard=hazard, unit=unit)


def replan(session: Session, *, clock: Clock, hazard: Hazard, unit: Unit) -> None:
    """Plan the chase anew after a change of deadline or state."""
    _ = (session, clock, hazard, unit)


def plan_many(session: Session, *, clock: Clock, hazards: list[tuple[Hazard, Unit]]) -> None:
    """Plan the chase of many new hazards (an import) at once."""
    for hazard, unit in hazards:
        plan(session, clock=clock, hazard=hazard, unit=unit)
