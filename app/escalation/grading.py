"""Severity from figures (State Council Decree 493) and the never-lower-automatically rule."""

from __future__ import annotations

from enum import StrEnum

from app import labels


class Severity(StrEnum):
    """I is the gravest (特别重大), IV the least (一般)."""

    I = "I"  # noqa: E741 - the official level names
    II = "II"
    III = "III"
    IV = "IV"

    @property
    def rank(self) -> int:
        """1 for I … 4 for IV: a smaller rank is more severe."""
        return _RANK[self]

    @property
    def color(self) -> str:
        return _COLOR[self]

    @property
    def label(self) -> str:
        return labels.SEVERITIES[self.value]


_RANK = {Severity.I: 1, Severity.II: 2, Severity.III: 3, Severity.IV: 4}
_COLOR = {Severity.I: "red", Severity.II: "orange", Severity.III: "yellow", Severity.IV: "blue"}

# Lower bounds of each band, most severe first: (level, deaths, serious injuries, direct loss in CNY).
# Bands are half-open and any one criterion decides, so the first band any figure reaches wins.
DECREE_493 = (
    (Severity.I, 30, 100, 100_000_000),
    (Severity.II, 10, 50, 50_000_000),
    (Severity.III, 3, 10, 10_000_000),
)


def computed(*, deaths: int, serious_injuries: int, economic_loss_cny: float) -> Severity:
    """The level the figures alone call for."""
    for level, min_deaths, min_injuries, min_loss in DECREE_493:
        if deaths >= min_deaths or serious_injuries >= min_injuries or economic_loss_cny >= min_loss:
            return level
    return Severity.IV


def graver(*levels: Severity | None) -> Severity:
    """The most severe of the given levels; an unrated incident counts as IV."""
    present = [lvl for lvl in levels if lvl is not None]
    return min(present, key=lambda s: s.rank) if present else Severity.IV


def is_graver(a: Severity, b: Severity) -> bool:
    return a.rank < b.rank
