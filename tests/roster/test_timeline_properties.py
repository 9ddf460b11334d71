"""Property tests of the pure rules: the answer is exactly the precedence winner, and a timeline's gaps are
exactly where nobody answers."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.roster.timeline import (
    Cover,
    RotationSpec,
    override_rank,
    pick,
    rotation_cover_at,
    rotation_covers,
    rotation_rank,
    shift_rank,
    slot_bounds,
    timeline,
)

ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
T0 = datetime(2026, 3, 1, tzinfo=UTC)  # windows below straddle the March and (for long ones) other DST changes
PEOPLE = st.integers(min_value=1, max_value=5)


@st.composite
def rotations(draw: st.DrawFn, rid: int) -> RotationSpec:
    shift = draw(st.sampled_from([60, 90, 480, 540, 720, 900, 1440, 2880, 10080]))
    cycle = (
        shift if draw(st.booleans()) else draw(st.sampled_from([shift, 1440, 2880, 10080]).filter(lambda c: c >= shift))
    )
    ends = draw(st.none() | st.integers(min_value=0, max_value=40 * 24).map(lambda h: T0 + timedelta(hours=h)))
    return RotationSpec(
        id=rid,
        unit_id=1,
        role="duty_officer",
        participants=tuple(draw(st.lists(PEOPLE, min_size=1, max_size=4))),
        start_date=date(2026, 2, 20) + timedelta(days=draw(st.integers(0, 30))),
        handoff_time=time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 45]))),
        shift_minutes=shift,
        cycle_minutes=cycle,
        ends_at=ends,
        zone=draw(st.sampled_from(ZONES)),
    )


@st.composite
def explicit(draw: st.DrawFn, source: str) -> list[Cover]:
    out = []
    for i in range(draw(st.integers(0, 5))):
        start = T0 + timedelta(minutes=draw(st.integers(0, 40 * 24 * 60)))
        end = start + timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))
        rid = draw(st.integers(1, 1000)) * 10 + i
        rank = override_rank(rid) if source == "override" else shift_rank(rid)
        out.append(Cover(start, end, draw(PEOPLE), source, rid, rank))
    return out


@st.composite
def rosters(draw: st.DrawFn) -> tuple[list[RotationSpec], list[Cover], set[int]]:
    specs = [draw(rotations(i + 1)) for i in range(draw(st.integers(0, 3)))]
    covers = draw(explicit("override")) + draw(explicit("shift"))
    active = set(draw(st.sets(PEOPLE, min_size=0, max_size=5)))
    return specs, covers, active


def brute_rotation(spec: RotationSpec, at: datetime) -> int | None:
    """The rotation's person at `at` by walking every shift from the first (no index arithmetic)."""
    k = 0
    while True:
        start, end = slot_bounds(spec, k)
        if start > at + timedelta(hours=2):
            return None
        if start <= at < end:
            return spec.participants[k % len(spec.participants)]
        k += 1


def oracle(specs: list[RotationSpec], covers: list[Cover], active: set[int], at: datetime) -> int | None:
    for source in ("override", "shift"):
        here = [c for c in covers if c.source == source and c.start <= at < c.end and c.person_id in active]
        if here:
            return max(here, key=lambda c: c.ref_id).person_id
    best: tuple[tuple[int, float, int], int] | None = None
    for spec in specs:
        person = brute_rotation(spec, at)
        if person is not None and person in active and (best is None or rotation_rank(spec) > best[0]):
            best = (rotation_rank(spec), person)
    return best[1] if best else None


def covers_at(specs: list[RotationSpec], covers: list[Cover], at: datetime) -> list[Cover]:
    found = [c for c in covers if c.start <= at < c.end]
    for spec in specs:
        rc = rotation_cover_at(spec, at)
        if rc is not None:
            found.append(rc)
    return found


@settings(max_examples=300, deadline=None)
@given(roster=rosters(), minutes=st.lists(st.integers(0, 40 * 24 * 60), min_size=1, max_size=8))
def test_resolution_is_exactly_the_precedence_winner(
    roster: tuple[list[RotationSpec], list[Cover], set[int]], minutes: list[int]
) -> None:
    specs, covers, active = roster
    for m in minutes:
        at = T0 + timedelta(minutes=m)
        got = pick(covers_at(specs, covers, at), at, active.__contains__)
        assert (got.person_id if got else None) == oracle(specs, covers, active, at), at


@settings(max_examples=200, deadline=None)
@given(roster=rosters(), offset=st.integers(0, 20 * 24 * 60), length=st.integers(1, 20 * 24 * 60))
def test_gaps_are_exactly_the_complement_of_coverage(
    roster: tuple[list[RotationSpec], list[Cover], set[int]], offset: int, length: int
) -> None:
    specs, covers, active = roster
    start = T0 + timedelta(minutes=offset)
    end = start + timedelta(minutes=length)
    window = covers + [c for spec in specs for c in rotation_covers(spec, start, end)]
    segments = timeline(window, start, end, active.__contains__)
    # The segments tile the window exactly, and neighbours differ (each is maximal).
    assert segments[0].start == start and segments[-1].end == end
    for a, b in itertools.pairwise(segments):
        assert a.end == b.start and (a.person_id, a.source) != (b.person_id, b.source)
    for seg in segments:
        # At its first instant, its last microsecond and its middle, a segment says what resolution says.
        for at in (seg.start, seg.end - timedelta(microseconds=1), seg.start + (seg.end - seg.start) / 2):
            assert oracle(specs, covers, active, at) == seg.person_id, (seg, at)
