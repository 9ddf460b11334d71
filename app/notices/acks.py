"""An SMS reply `1 <code>` (or `1`) or a keypress to a notice page signs (签收) for the unit it was sent to, provided
the sender is on duty there (or its admin): the unit's leader answering the reminder signs too."""

from __future__ import annotations

from sqlmodel import Session

from app.auth import service as auth_service
from app.clock import Clock
from app.notices import service as notice_service
from app.notices.models import Notice, NoticeReceipt
from app.notify import inbound
from app.notify.models import OutboxMessage
from app.org.models import Person, Unit
from app.rollcall import chase as rollcall_chase


def sign_page(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> inbound.AckOutcome:
    row = rollcall_chase.of_page(session, page)
    receipt = session.get(NoticeReceipt, int(row.subject.split(":")[0])) if row is not None else None
    notice = session.get(Notice, receipt.notice_id) if receipt is not None else None
    person = session.get(Person, page.person_id) if page.person_id is not None else None
    unit = session.get(Unit, receipt.unit_id) if receipt is not None else None
    if row is None or receipt is None or notice is None or person is None or unit is None or person.phone != phone:
        return inbound.AckOutcome.said(False, "ack_nothing_pending", {})
    actor = auth_service.person_principal(session, person.id or 0)
    if notice_service.may_act_for(session, clock=clock, person=person, actor=actor, unit=unit):
        notice_service.sign_receipt(session, clock=clock, notice=notice, receipt=receipt, person=person, via=via)
        return inbound.AckOutcome.said(True, "notice_signed", {"code": notice.code})
    return inbound.AckOutcome.said(False, "notice_not_on_duty", {"unit": unit.name, "code": notice.code})
