"""Delivery events: what the pipeline learns about a message that others act on, inside the same transaction.

The dispatcher (a send's outcome) and the receipt callbacks (a provider's report) call every observer with
the events of what they just wrote, in their transaction, so a timeline entry or a follow-up page commits
with the status change or not at all. Kinds:
- `failover`: a provider of the route was passed over for this message (reason and error class);
- `failed`: the message ended `failed` or `undelivered` (error class and reason).
Observers are plain functions registered on the app at start (`app.state.delivery_observers`): the incidents
package writes the timeline and pages the next post at once when a recipient is invalid; the SMS→voice
fallback hangs here too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from app.clock import Clock


@dataclass(frozen=True)
class DeliveryEvent:
    kind: str  # "failover" | "failed"
    message_id: int
    channel: str
    provider: str | None
    error_class: str | None
    reason: str
    # For a failover: the provider that carried the message in the end (None while it still waits).
    carried_by: str | None = None


Observer = Callable[[Session, Clock, Sequence[DeliveryEvent]], None]


def notify(observers: Sequence[Observer], session: Session, clock: Clock, events: Sequence[DeliveryEvent]) -> None:
    if not events:
        return
    for observer in observers:
        observer(session, clock, events)
