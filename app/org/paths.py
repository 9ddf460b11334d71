"""Subtree tests on materialized unit paths ("110000/110106/110106001"), in Python and in SQL.

A path is inside root R's subtree when it is R itself or starts with R + "/": the separator is what keeps
"110106" from holding its sibling "1101060", and "110106001" from holding "11010600". `within` counts the root
itself, `below` does not.

The SQL forms escape LIKE's wildcards (autoescape, escape character "/"): unit codes are digits today, but a code
with "_" or "%" must not widen a scope. PostgreSQL folds the escaped pattern to the same constant as the plain one,
so plans do not change (EXPLAIN, PostgreSQL 15). A trap either way: the path indexes are plain btrees, so under a
database collation other than "C" (C.UTF-8 included) a LIKE is filtered, never an index range; an index with
varchar_pattern_ops gives both forms the same range scan."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlalchemy.sql import ColumnElement


def within(path: str, root: str) -> bool:
    """`path` is `root` or lies below it."""
    return path == root or path.startswith(root + "/")


def below(path: str, root: str) -> bool:
    """`path` lies strictly below `root` (`root` itself is not)."""
    return path.startswith(root + "/")


def sql_within(column: Any, root: str) -> ColumnElement[bool]:
    """WHERE clause: the path column is `root` or lies below it."""
    return or_(column == root, sql_below(column, root))


def sql_below(column: Any, root: str) -> ColumnElement[bool]:
    """WHERE clause: the path column lies strictly below `root`."""
    clause: ColumnElement[bool] = column.startswith(root + "/", autoescape=True)
    return clause
