from __future__ import annotations

import pytest
from sqlalchemy import String, literal
from sqlmodel import Session, col, select

from app.org import paths
from app.org.models import Unit

DISTRICT = "110000/110106"
STREET = "110000/110106/110106001"

# (path, root, within, below)
CASES = [
    (DISTRICT, DISTRICT, True, False),  # the root itself: within, not below
    (STREET, DISTRICT, True, True),
    (STREET + "/1", DISTRICT, True, True),  # any depth
    ("110000", DISTRICT, False, False),  # an ancestor is not inside
    ("110000/1101060", DISTRICT, False, False),  # a sibling sharing the prefix "110106"
    ("110000/1101060/110106001", DISTRICT, False, False),  # and its subtree
    (STREET, "110000/110106/11010600", False, False),  # "110106001" is not under "11010600"
    ("110000/110107", DISTRICT, False, False),
    (DISTRICT, STREET, False, False),
]


@pytest.mark.parametrize(("path", "root", "inside", "strictly"), CASES)
def test_python_forms(path: str, root: str, inside: bool, strictly: bool) -> None:
    assert paths.within(path, root) is inside
    assert paths.below(path, root) is strictly


@pytest.mark.parametrize(("path", "root", "inside", "strictly"), CASES)
def test_sql_forms_agree_with_python(session: Session, path: str, root: str, inside: bool, strictly: bool) -> None:
    column = literal(path, String)
    row = session.exec(select(paths.sql_within(column, root), paths.sql_below(column, root))).one()
    assert (bool(row[0]), bool(row[1])) == (inside, strictly)


@pytest.mark.parametrize("root", ["110000/1101_6", "110000/11010%"])
def test_sql_forms_take_a_wildcard_in_the_root_literally(session: Session, root: str) -> None:
    column = literal(STREET, String)
    row = session.exec(select(paths.sql_within(column, root), paths.sql_below(column, root))).one()
    assert (bool(row[0]), bool(row[1])) == (False, False)


def test_subtree_of_a_district_on_the_unit_table(session: Session) -> None:
    """Fengtai (110106) and its 26 streets (the data set's count); strictly below leaves the district out."""
    within = session.exec(select(Unit.code).where(paths.sql_within(col(Unit.path), DISTRICT))).all()
    below = session.exec(select(Unit.code).where(paths.sql_below(col(Unit.path), DISTRICT))).all()
    assert "110106" in within
    assert "110106" not in below
    assert set(within) - set(below) == {"110106"}
    assert len(below) == 26
    assert all(code.startswith("110106") for code in within)
