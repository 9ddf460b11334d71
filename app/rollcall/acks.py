"""An SMS reply `1 <code>` (or `1`) or a keypress to a roll-call page: the post's holder answers the roll (确认在岗);
the unit's leader answering the page about a missed post acknowledges it (the chase stops)."""

from __future__ import annotations

from sqlmodel import Session

from app.clock import Clock
from app.escalation import chase
from app.notify import inbound, outbox
from app.notify.models import OutboxMessage
from app.org.models import Person
from app.rollcall import chase as rollcall_chase
from app.rollcall import service as rollcall_service
from app.rollcall.models import RollCall, RollCallEntry


def answer_page(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> inbound.AckOutcome:
    row = rollcall_chase.of_page(session, page)
    # Locked now: recording the answer needs the lock, and taking it here spares reading the entry twice.
    entry = session.get(RollCallEntry, int(row.subject), with_for_update=True) if row is not None else None
    rc = session.get(RollCall, entry.roll_call_id) if entry is not None else None
    person = session.get(Person, page.person_id) if page.person_id is not None else None
    if row is None or entry is None or rc is None or person is None or person.phone != phone:
        return inbound.AckOutcome.said(False, "ack_nothing_pending", {})
    if entry.person_id == person.id:
        rollcall_service.record_answer(session, clock=clock, rc=rc, entry=entry, person=person, via=via, locked=True)
        return inbound.AckOutcome.said(True, "rollcall_answered", {"code": rc.code})
    # Not the post's holder (its leader, told it missed): acknowledged, the post stays as it is.
    chase.answer(session, clock=clock, kind=rollcall_chase.ROLLCALL, subject=row.subject, by=f"person:{person.id}")
    outbox.mark_answered(session, clock=clock, subject=page.subject or "", via=via)
    return inbound.AckOutcome.said(True, "ack_confirmed", {"code": rc.code})


def noted(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> inbound.AckOutcome:
    """A reply to a page that asks for none (a roll-call result, a withdrawn notice): noted, nothing changes."""
    del phone
    outbox.mark_answered(session, clock=clock, subject=page.subject or "", via=via)
    return inbound.AckOutcome.said(True, "ack_noted", {"code": page.incident_code or ""})
