"""Acknowledgement by SMS reply or phone keypress: the notification pipeline's seam, filled by incidents.

The reply "1" or a keypress reaches here with the page it answers; the tier that page was for is
acknowledged by the person it was sent to, through the same function as the console's button.
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.clock import Clock
from app.incidents import lifecycle
from app.incidents import service as incident_service
from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier
from app.notify import inbound
from app.notify.models import OutboxMessage
from app.org.models import Person


def acknowledge_page(
    session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str
) -> inbound.AckOutcome:
    """Acknowledge the tier a page was sent for, as the person it was sent to."""
    inc = session.get(Incident, page.incident_id) if page.incident_id is not None else None
    if inc is None or page.person_id is None or page.tier is None:
        # Not an incident page (or its incident is gone): the page alone is marked answered.
        return inbound.default_acknowledger(session, clock=clock, phone=phone, page=page, via=via)
    inc = incident_service.lock(session, page.incident_id)  # type: ignore[arg-type]
    person = session.get(Person, page.person_id)
    state = session.exec(
        select(IncidentTier).where(IncidentTier.incident_id == inc.id, IncidentTier.tier == page.tier)
    ).first()
    if person is None or state is None:
        return inbound.AckOutcome.said(False, "ack_refused", {"code": inc.code})
    if inc.status in OPEN_STATUSES:
        lifecycle.acknowledge_tier(session, clock=clock, inc=inc, state=state, person=person, via=via)
    # Mark this incident's pages to this phone answered, so the next "1" goes to the next pending page.
    return inbound.default_acknowledger(session, clock=clock, phone=phone, page=page, via=via)
