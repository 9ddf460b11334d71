"""SQL pieces the figures share: how rows are grouped (by child unit from the path, by week from a time), the
subtree filter, seconds between two instants, and percentiles from window functions, for SQLite and PostgreSQL
alike (SQLite has no percentile_cont, so both use the same row-number form)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, extract, func, literal
from sqlalchemy.sql import ColumnElement

from app.org import paths
from app.org.models import Unit

WEEK_SECONDS = 7 * 24 * 3600


def seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """`later - earlier` in seconds, a float (SQLite keeps instants as text, PostgreSQL as timestamptz)."""
    if dialect == "postgresql":
        return extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def in_subtree(path: Any, root: Unit) -> ColumnElement[bool] | None:
    """Rows placed at `root` or below it (None for the root of the whole tree: every row is)."""
    if root.parent_id is None:
        return None
    return paths.sql_within(path, root.path)


@dataclass(frozen=True)
class Grouping:
    """How one query groups its rows: `key(path, at)` is the SQL of a row's group from its unit path and its time;
    `label` turns a key read back into the group's name (a unit code, a week number)."""

    key: Callable[[Any, Any], ColumnElement[Any]]
    label: Callable[[Any], Any]


def by_child(root: Unit, children: Sequence[Unit]) -> Grouping:
    """Group by the child unit a row lies under; rows at `root` itself get root's code (本级).

    Codes of one tier have one length (GB/T 2260), so a child's key is the path's prefix of that length, one
    substr per row; a data set whose sibling codes differ in length falls back to one CASE over the children."""
    lengths = {len(c.path) for c in children}
    if len(lengths) == 1:
        (width,) = lengths
        by_path = {c.path: c.code for c in children}

        def key(path: Any, _at: Any) -> ColumnElement[Any]:
            return func.substr(path, 1, width)

        return Grouping(key, lambda k: by_path.get(k, root.code))

    def case_key(path: Any, _at: Any) -> ColumnElement[Any]:
        whens = [(paths.sql_within(path, c.path), literal(c.code)) for c in children]
        return case(*whens, else_=literal(root.code)) if whens else literal(root.code)

    return Grouping(case_key, lambda k: k)


def whole(root: Unit) -> Grouping:
    """One group, the whole subtree (the prefix every row in it shares, so both databases can GROUP BY it)."""
    width = len(root.path)
    return Grouping(lambda path, _at: func.substr(path, 1, width), lambda _k: root.code)


def by_week(dialect: str, start: datetime) -> Grouping:
    """Group by the week (0, 1, …) counted in 7-day steps from `start`, the period's first local midnight."""

    def key(_path: Any, at: Any) -> ColumnElement[Any]:
        seconds = seconds_between(dialect, at, literal(start, type_=_utc_type()))
        if dialect == "postgresql":
            return cast(func.floor(seconds / WEEK_SECONDS), Integer)
        return cast(seconds / WEEK_SECONDS, Integer)  # never negative here: truncation is the floor

    return Grouping(key, lambda k: int(k))  # read back as text from a UNION of groupings


def _utc_type() -> Any:
    from app.db import UTCDateTime

    return UTCDateTime()


# The percentiles shown, as fractions num/den: the median and the 90th percentile.
PERCENTILES = {"median": (1, 2), "p90": (9, 10)}


def low_rank(n: Any, num: int, den: int) -> Any:
    """The 1-based rank at or below percentile num/den of n sorted values, in integer arithmetic (both databases
    divide integers to an integer): the rank 1 + p·(n − 1) of PostgreSQL's percentile_cont and Excel's
    PERCENTILE.INC, floored."""
    return (num * (n - 1) + den) // den


def interpolate(n: int, num: int, den: int, lo: float | None, hi: float | None) -> float | None:
    """Finish the percentile from the values at the low rank and the next one (hi is None past the last)."""
    if n == 0 or lo is None:
        return None
    remainder = (num * (n - 1) + den) % den
    if remainder == 0 or hi is None:
        return round(float(lo), 1)
    return round(float(lo) + remainder / den * (float(hi) - float(lo)), 1)


def where_all(*conditions: ColumnElement[bool] | None) -> ColumnElement[bool]:
    return and_(*(c for c in conditions if c is not None))
