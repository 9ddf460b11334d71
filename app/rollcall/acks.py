"""An SMS reply `1 <code>` (or `1`) or a keypress to a roll-call page answers that post (确认在岗)."""

from __future__ import annotations

from sqlmodel import Session

from app.clock import Clock
from app.notify import inbound, templates
from app.notify.models import OutboxMessage
from app.org.models import Person
from app.rollcall import service as rollcall_service
from app.rollcall.models import RollCall, RollCallEntry


def answer_page(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> inbound.AckOutcome:
    """The roll-call entry the page was sent for is answered by the person it was sent to."""
    entry_id = int((page.subject or "").split(":", 1)[1])
    entry = session.get(RollCallEntry, entry_id)
    person = session.get(Person, page.person_id) if page.person_id is not None else None
    rc = session.get(RollCall, entry.roll_call_id) if entry is not None else None
    if entry is None or rc is None or person is None or person.phone != phone:
        return inbound.AckOutcome(ok=False, reply=templates.render("ack_nothing_pending", {}))
    rollcall_service.record_answer(session, clock=clock, rc=rc, entry=entry, person=person, via=via)
    return inbound.AckOutcome(ok=True, reply=templates.render("rollcall_answered", {"code": rc.code}))
