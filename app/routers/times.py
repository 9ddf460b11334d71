"""Instants in query strings: ISO 8601, tolerant of the `+` that an unencoded URL turns into a space."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from app.errors import Invalid
from app.roster.resolve import default_zone

_SPACED_OFFSET = re.compile(r"^(.*\d) (\d{2}:?\d{2})$")


def parse_instant(value: str | None, *, field: str, default: datetime) -> datetime:
    """An aware datetime; a time without an offset is read in the service's zone (DUTYLINE_TIMEZONE)."""
    if value is None or value == "":
        return default
    text = value.strip()
    match = _SPACED_OFFSET.match(text)
    if match:  # "...T08:30:00 08:00": the URL had a literal '+'
        text = f"{match.group(1)}+{match.group(2)}"
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise Invalid.field(field, f"{value!r} is not an ISO 8601 time, e.g. 2026-04-18T08:30:00+08:00") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_zone())
    return parsed.astimezone(UTC)
