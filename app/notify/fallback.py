"""SMS → voice fallback: an SMS page that needs an acknowledgement and ends `failed` or `undelivered` (the
provider's receipt, or the dispatcher giving up) is followed by one voice call to the same person.

The call's dedup key is the page's own voice key (the SMS key with `:voice` for `:sms`), so a repeated receipt,
a second failure path, or a page that already rang (a leader's voice page) never makes a second call.
Runs in the transaction that recorded the failure.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from app.clock import Clock
from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier, TimelineEntry
from app.notify import outbox
from app.notify.budget import DIGEST, NEEDS_ACK
from app.notify.models import Channel, OutboxMessage, Status

ACTOR = "system:notify"
ENDED = (Status.failed, Status.undelivered)
STATUS_LABEL = {Status.failed: "发送失败", Status.undelivered: "未送达"}


def voice_key(sms_key: str, row_id: int) -> str:
    return sms_key[: -len(":sms")] + ":voice" if sms_key.endswith(":sms") else f"fallback:{row_id}:voice"


def after_failure(session: Session, *, clock: Clock, ids: Iterable[int]) -> list[int]:
    """For the SMS pages among `ids` that now stand failed or undelivered: queue their voice call; its id each."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    # Only while the incident is open and the page's tier has not acknowledged: nobody is rung for nothing.
    tier = and_(col(IncidentTier.incident_id) == col(Incident.id), col(IncidentTier.tier) == col(OutboxMessage.tier))
    query = (
        select(OutboxMessage)
        .join(Incident, col(Incident.id) == col(OutboxMessage.incident_id))
        .outerjoin(IncidentTier, tier)
        .where(col(Incident.status).in_(OPEN_STATUSES), col(IncidentTier.acknowledged_at).is_(None))
        .where(
            col(OutboxMessage.id).in_(wanted),
            col(OutboxMessage.channel) == Channel.sms,
            col(OutboxMessage.status).in_(ENDED),
            col(OutboxMessage.template).in_([*NEEDS_ACK, DIGEST]),
            col(OutboxMessage.incident_id).is_not(None),
            col(OutboxMessage.acknowledged_at).is_(None),
            # A number no provider can reach is not rung either: its chain already moved on to the next post.
            or_(col(OutboxMessage.error_class).is_(None), col(OutboxMessage.error_class) != "recipient_invalid"),
        )
    )
    calls: list[int] = []
    for sms in session.exec(query.order_by(col(OutboxMessage.id))).all():
        assert sms.id is not None and sms.incident_id is not None
        row = outbox.message(
            clock=clock,
            channel=Channel.voice,
            to=sms.recipient,
            template="voice_page",
            params=sms.params,
            dedup_key=voice_key(sms.dedup_key, sms.id),
            person_id=sms.person_id,
            incident_id=sms.incident_id,
            incident_code=sms.incident_code,
            tier=sms.tier,
            step=sms.step,
        )
        call_id = outbox.enqueue(session, row)
        if call_id is None:
            continue  # this page has its call already
        calls.append(call_id)
        label = STATUS_LABEL.get(Status(sms.status), sms.status)
        session.add(
            TimelineEntry(
                incident_id=sms.incident_id,
                at=clock.now(),
                kind="fallback",
                actor=ACTOR,
                tier=sms.tier,
                message=f"短信{label}（{(sms.last_error or sms.status)[:120]}），改为电话通知",
                data={
                    "person_id": sms.person_id,
                    "sms_id": sms.id,
                    "voice_id": call_id,
                    "status": sms.status,
                    "channels": ["voice"],
                },
            )
        )
    return calls
