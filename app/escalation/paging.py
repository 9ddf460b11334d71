"""The pages of one unit of work, written together: one INSERT into the outbox for a whole tick batch.

A `Pager` is an explicit object the caller creates, passes down and flushes at the end of its unit of work
(no hidden switch on the session). Each `Page` learns, at the flush, which of its channels' rows went in: a
dedup key that already exists, or that an earlier page of the same batch took, is not written again, and the
caller records the page (a timeline entry, an event) only for what went in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlmodel import Session

from app.db import insert_many
from app.notify import outbox


@dataclass
class Page:
    """Outbox rows for one person, by channel (built by `outbox.message`)."""

    rows: dict[str, dict[str, Any]]
    on_sent: Callable[[list[str]], None] | None = None
    # Filled by Pager.flush: the channels whose rows went in (empty: every key existed already).
    sent: list[str] = field(default_factory=list)
    flushed: bool = False


class Pager:
    """Collects pages and writes them in one statement at `flush()` (callable more than once)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._pending: list[Page] = []
        self._later: dict[Table, list[dict[str, Any]]] = {}

    def later(self, table: Table, row: dict[str, Any]) -> None:
        """A row (an event, a timeline entry) to write at the flush, after the pages and their `on_sent`: one
        INSERT per table for the batch, rows rather than ORM objects (a tick batch writes hundreds)."""
        self._later.setdefault(table, []).append(row)

    def add(self, rows: dict[str, dict[str, Any]], on_sent: Callable[[list[str]], None] | None = None) -> Page:
        page = Page(rows, on_sent)
        self._pending.append(page)
        return page

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self) -> list[Page]:
        """Write every pending page; call each page's `on_sent` with its channels that went in, in order; then
        the rows kept for `later` (those callbacks' included)."""
        pages = self._write_pages()
        later, self._later = self._later, {}
        if later:
            # The caller's own pending objects (a timeline entry made before the batch's) go in first, so that
            # entries keep the order they were made in.
            self.session.flush()
        for table, rows in later.items():
            insert_many(self.session, table, rows)
        return pages

    def _write_pages(self) -> list[Page]:
        pages, self._pending = self._pending, []
        if not pages:
            return []
        claimed: set[str] = set()
        own: list[list[str]] = []
        for page in pages:  # a dedup key that comes twice in the batch belongs to its first page
            mine = [ch for ch, row in page.rows.items() if row["dedup_key"] not in claimed]
            claimed.update(page.rows[ch]["dedup_key"] for ch in mine)
            own.append(mine)
        rows = [page.rows[ch] for page, mine in zip(pages, own, strict=True) for ch in mine]
        with self.session.no_autoflush:  # pending rows of the caller go in whole, at its own flush
            written = outbox.enqueue_many(self.session, rows)
        for page, mine in zip(pages, own, strict=True):
            page.sent = [ch for ch in mine if page.rows[ch]["dedup_key"] in written]
            page.flushed = True
            if page.sent and page.on_sent is not None:
                page.on_sent(page.sent)
        return pages
