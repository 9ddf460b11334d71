"""An incident's timeline: what happened, in order, in the transaction of the change itself.

Outside the tick an entry goes in at once (`note`). The tick writes a batch of steps across incidents: it passes
a `Batch` down, which holds the entries back and writes them at `flush()` together with the batch's pages (one
INSERT into the outbox), in the order they were made; a page's entry only when one of its rows went in (its
dedup key may exist already).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.escalation.paging import Page, Pager
from app.incidents.models import Incident, TimelineEntry

SYSTEM = "system:escalation"


def entry(
    incident: Incident,
    *,
    at: datetime,
    kind: str,
    message: str,
    actor: str = SYSTEM,
    tier: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    assert incident.id is not None
    return TimelineEntry(
        incident_id=incident.id, at=at, kind=kind, actor=actor, tier=tier, message=message[:1000], data=data
    )


def note(
    session: Session,
    incident: Incident,
    *,
    at: datetime,
    kind: str,
    message: str,
    actor: str = SYSTEM,
    tier: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Add an entry to the incident's timeline, in the caller's transaction."""
    row = entry(incident, at=at, kind=kind, message=message, actor=actor, tier=tier, data=data)
    session.add(row)
    return row


class Batch:
    """A unit of work's timeline entries and pages, written together, in order, at `flush()`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pager = Pager(session)
        self._items: list[TimelineEntry | tuple[Page, Callable[[list[str]], TimelineEntry]]] = []

    def note(
        self,
        incident: Incident,
        *,
        at: datetime,
        kind: str,
        message: str,
        actor: str = SYSTEM,
        tier: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self._items.append(entry(incident, at=at, kind=kind, message=message, actor=actor, tier=tier, data=data))

    def page(self, rows: dict[str, dict[str, Any]], record: Callable[[list[str]], TimelineEntry]) -> Page:
        """Queue a page's outbox rows (by channel); `record(channels sent)` builds its entry if any went in."""
        page = self.pager.add(rows)
        self._items.append((page, record))
        return page

    def flush(self) -> None:
        self.pager.flush()
        items, self._items = self._items, []
        for item in items:
            if isinstance(item, TimelineEntry):
                self.session.add(item)
                continue
            page, record = item
            if page.sent:
                self.session.add(record(page.sent))
