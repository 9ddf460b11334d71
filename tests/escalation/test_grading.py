from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.escalation.grading import Severity, computed, graver


@pytest.mark.parametrize(
    ("deaths", "injuries", "loss", "level"),
    [
        (0, 0, 0, Severity.IV),
        (2, 9, 9_999_999, Severity.IV),
        (3, 0, 0, Severity.III),
        (0, 10, 0, Severity.III),
        (0, 0, 10_000_000, Severity.III),
        (9, 49, 49_999_999, Severity.III),
        (10, 0, 0, Severity.II),
        (0, 50, 0, Severity.II),
        (0, 0, 50_000_000, Severity.II),
        (29, 99, 99_999_999.99, Severity.II),
        (30, 0, 0, Severity.I),
        (0, 100, 0, Severity.I),
        (0, 0, 100_000_000, Severity.I),
        (2, 12, 0, Severity.III),  # any one criterion decides
        (12, 0, 0, Severity.II),
    ],
)
def test_decree_493_bands_are_half_open(deaths: int, injuries: int, loss: float, level: Severity) -> None:
    assert computed(deaths=deaths, serious_injuries=injuries, economic_loss_cny=loss) == level


@given(st.integers(0, 200), st.integers(0, 300), st.floats(0, 2e8, allow_nan=False))
def test_more_figures_never_mean_a_lower_level(deaths: int, injuries: int, loss: float) -> None:
    base = computed(deaths=deaths, serious_injuries=injuries, economic_loss_cny=loss)
    more = computed(deaths=deaths + 1, serious_injuries=injuries + 1, economic_loss_cny=loss + 1)
    assert more.rank <= base.rank


def test_graver_takes_the_most_severe_and_unrated_is_iv() -> None:
    assert graver(None, None) == Severity.IV
    assert graver(Severity.III, Severity.II, None) == Severity.II
    assert graver(Severity.IV) == Severity.IV
    assert Severity.I.color == "red" and Severity.IV.color == "blue"
