"""What an incident learns from its pages' delivery (an observer of `app.notify.delivery`).

A provider passed over (failover) and a page that failed go on the incident's timeline with the reason.
A page that cannot reach its recipient (`recipient_invalid`: no provider ever will) moves that tier's chain
on at once: its timer is set to now, so the next tick pages the next post (the leader, then the tier above)
instead of waiting out the acknowledgement window for someone who never got the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app import labels
from app.clock import Clock
from app.escalation import wake
from app.incidents import timeline
from app.incidents.models import Incident, IncidentTier
from app.notify.delivery import DeliveryEvent
from app.notify.models import Channel, ErrorClass, OutboxMessage

ACTOR = "system:delivery"


def _name(provider: str | None) -> str:
    return labels.PROVIDERS.get(provider or "", provider or "?")


def on_delivery(session: Session, clock: Clock, events: Sequence[DeliveryEvent]) -> None:
    pages = [e for e in events if e.channel in (Channel.sms, Channel.voice)]
    if not pages:
        return
    rows = {
        m.id: m
        for m in session.exec(
            select(OutboxMessage).where(col(OutboxMessage.id).in_({e.message_id for e in pages}))
        ).all()
    }
    now = clock.now()
    for event in pages:
        row = rows.get(event.message_id)
        if row is None or row.incident_id is None:
            continue
        inc = session.get(Incident, row.incident_id)
        if inc is None:
            continue
        data = {
            "message_id": row.id,
            "channel": row.channel,
            "person_id": row.person_id,
            "provider": event.provider,
            "error_class": event.error_class,
            "reason": event.reason[:300],
        }
        if event.kind == "failover":
            then = f"，改由{_name(event.carried_by)}发送" if event.carried_by else ""
            timeline.note(
                session,
                inc,
                at=now,
                kind="failover",
                actor=ACTOR,
                tier=row.tier,
                message=f"{_name(event.provider)}未能发送（{event.error_class}）{then}：{event.reason}"[:1000],
                data=data | {"carried_by": event.carried_by},
            )
            continue
        timeline.note(
            session,
            inc,
            at=now,
            kind="delivery_failed",
            actor=ACTOR,
            tier=row.tier,
            message=f"通知未送达（{event.error_class}）：{event.reason}"[:1000],
            data=data,
        )
        if event.error_class == ErrorClass.recipient_invalid and row.tier is not None:
            _page_next_now(session, clock, inc, row)


def _page_next_now(session: Session, clock: Clock, inc: Incident, row: OutboxMessage) -> None:
    """The tier's chain goes on now: the next post is paged by the next tick (minimal hook into the chase)."""
    state = session.exec(
        select(IncidentTier).where(IncidentTier.incident_id == inc.id, IncidentTier.tier == row.tier)
    ).first()
    if state is None or state.acknowledged_at is not None or state.next_step_at is None:
        return
    if row.step is not None and state.step != row.step:
        return  # the chain has already moved past the step this page belonged to
    if row.template == "incident_reminder":
        # A reminder to the same unreachable number (it goes with the leader's page): the leader just paged
        # keeps the window; moving on again would tell the tier above at once.
        return
    now = clock.now()
    if state.next_step_at > now:
        state.next_step_at = now
        session.add(state)
        wake.made_due(session)  # the tick takes it at this commit, not at its next second
        timeline.note(
            session,
            inc,
            at=now,
            kind="page_next_now",
            actor=ACTOR,
            tier=row.tier,
            message="号码无效，立即通知下一岗位",
            data={"message_id": row.id, "person_id": row.person_id},
        )
