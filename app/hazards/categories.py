"""Venue categories (场所类别): a configurable list, hospitals and elderly care first (the seed's order).

`configure` takes the setting's text (`DUTYLINE_HAZARD_CATEGORIES`): comma-separated codes, each optionally with its
Chinese name after a colon (`hospital,school:学校`). A known code without a name keeps its default name.
"""

from __future__ import annotations

import re

from app import labels

DEFAULTS: dict[str, str] = dict(labels.VENUE_CATEGORIES)
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_current: dict[str, str] = dict(DEFAULTS)


def parse(spec: str) -> dict[str, str]:
    """The categories a setting names, in its order; ValueError naming the bad entry."""
    out: dict[str, str] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        code, _, name = item.partition(":")
        code, name = code.strip(), name.strip()
        if not _CODE.match(code):
            raise ValueError(f"{code!r} is not a category code (lower-case letters, digits and _)")
        out[code] = name or DEFAULTS.get(code, code)
    if not out:
        raise ValueError("at least one category is needed")
    return out


def configure(spec: str | None) -> None:
    global _current
    _current = parse(spec) if spec else dict(DEFAULTS)


def current() -> dict[str, str]:
    return dict(_current)


def name(code: str) -> str:
    return _current.get(code) or DEFAULTS.get(code, code)
