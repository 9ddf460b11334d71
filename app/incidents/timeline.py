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

from app.db import insert_many
from app.escalation.paging import Page, Pager
from app.incidents.models import Incident, TimelineEntry

SYSTEM = "system:escalation"


def row(
    incident: Incident,
    *,
    at: datetime,
    kind: str,
    message: str,
    actor: str = SYSTEM,
    tier: str | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry as the column values of its row."""
    assert incident.id is not None
    return {"incident_id": incident.id, "at": at, "kind": kind, "actor": actor, "tier": tier,
            "message": message[:1000], "data": data}  # fmt: skip


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
    entry = TimelineEntry(**row(incident, at=at, kind=kind, message=message, actor=actor, tier=tier, data=data))
    session.add(entry)
    return entry


class Batch:
    """A unit of work's timeline entries and pages, written together, in order, at `flush()`: the pages in one
    INSERT into the outbox, the entries in one INSERT (rows, not ORM objects: a tick writes hundreds)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pager = Pager(session)
        self._items: list[dict[str, Any] | tuple[Page, Callable[[list[str]], dict[str, Any]]]] = []

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
        self._items.append(row(incident, at=at, kind=kind, message=message, actor=actor, tier=tier, data=data))

    def page(self, rows: dict[str, dict[str, Any]], record: Callable[[list[str]], dict[str, Any]]) -> Page:
        """Queue a page's outbox rows (by channel); `record(channels sent)` builds its entry (a `row`) if any went
        in."""
        page = self.pager.add(rows)
        self._items.append((page, record))
        return page

    def flush(self) -> None:
        self.pager.flush()
        items, self._items = self._items, []
        entries: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, dict):
                entries.append(item)
                continue
            page, record = item
            if page.sent:
                entries.append(record(page.sent))
        if entries:
            insert_many(self.session, TimelineEntry.__table__, entries)  # type: ignore[attr-defined]
