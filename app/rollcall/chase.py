"""How roll-call posts are chased: the first page now; a post that does not answer in time is `missed`.

The steps after the first page run on the one step machine of app.escalation (see ARCHITECTURE.md "One chase").
"""

from __future__ import annotations

from sqlmodel import Session

from app.clock import Clock
from app.notify import outbox
from app.org.models import Person, Unit
from app.rollcall import service as rollcall_service
from app.rollcall.models import RollCall


def begin(
    session: Session,
    *,
    clock: Clock,
    rc: RollCall,
    caller: Unit,
    entries: list[tuple[int, Unit, str, Person | None]],
) -> None:
    """Step 0: page the holder of every manned post, in one INSERT."""
    rows = [
        rollcall_service.page_row(
            clock=clock, rc=rc, entry_id=entry_id, caller=caller, unit=unit, role=role, person=person
        )
        for entry_id, unit, role, person in entries
        if person is not None
    ]
    outbox.enqueue_many(session, rows)
