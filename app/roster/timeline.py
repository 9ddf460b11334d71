"""Pure roster arithmetic: rotation shifts in wall-clock time, the precedence winner, and timelines.

Nothing here touches the database, so the rules can be checked exhaustively (tests/roster/test_properties.py).
Precedence: an override beats an explicit shift beats a rotation; among overrides and among shifts the newest
(highest id) wins; among rotations the one that started last wins. A cover whose person is inactive is skipped,
so the next one down answers (or nobody: a gap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

SOURCE_RANK = {"override": 2, "shift": 1, "rotation": 0}


@dataclass(frozen=True, slots=True)
class RotationSpec:
    id: int
    unit_id: int
    role: str
    participants: tuple[int, ...]
    start_date: date
    handoff_time: time
    shift_minutes: int
    cycle_minutes: int
    ends_at: datetime | None
    zone: ZoneInfo
    # The first handoff as an instant when the caller already has it (the stored column); computed otherwise.
    starts_at: datetime | None = None

    @property
    def base(self) -> datetime:
        """The first handoff as a naive wall-clock time in the unit's zone."""
        return datetime.combine(self.start_date, self.handoff_time)


@dataclass(frozen=True, slots=True)
class Cover:
    """Someone covering [start, end) from one source; `rank` orders competing covers (higher wins)."""

    start: datetime
    end: datetime
    person_id: int
    source: str
    ref_id: int
    rank: tuple[int, float, int]


@dataclass(frozen=True, slots=True)
class Segment:
    start: datetime
    end: datetime
    person_id: int | None
    source: str | None


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    # A wall time inside a spring-forward gap maps forward (fold=0), so boundaries stay in order for
    # cycles of an hour or more; an ambiguous fall-back time takes its first occurrence.
    return wall.replace(tzinfo=zone).astimezone(UTC)


def rotation_rank(spec: RotationSpec) -> tuple[int, float, int]:
    first = spec.starts_at if spec.starts_at is not None else wall_to_utc(spec.base, spec.zone)
    return (0, first.timestamp(), spec.id)


def override_rank(override_id: int) -> tuple[int, float, int]:
    return (2, 0.0, override_id)


def shift_rank(shift_id: int) -> tuple[int, float, int]:
    return (1, 0.0, shift_id)


def slot_bounds(spec: RotationSpec, k: int) -> tuple[datetime, datetime]:
    """The k-th shift of a rotation as UTC instants (cut short by the rotation's end)."""
    start_wall = spec.base + timedelta(minutes=k * spec.cycle_minutes)
    start = wall_to_utc(start_wall, spec.zone)
    end = wall_to_utc(start_wall + timedelta(minutes=spec.shift_minutes), spec.zone)
    if spec.ends_at is not None and end > spec.ends_at:
        end = spec.ends_at
    return start, end


def _index_near(spec: RotationSpec, at: datetime) -> int:
    wall = at.astimezone(spec.zone).replace(tzinfo=None)
    return (wall - spec.base) // timedelta(minutes=spec.cycle_minutes)


def rotation_cover_at(spec: RotationSpec, at: datetime) -> Cover | None:
    """The rotation's shift covering `at`, if any."""
    if not spec.participants or (spec.ends_at is not None and at >= spec.ends_at):
        return None
    k0 = _index_near(spec, at)
    # DST moves the wall clock by an hour at most, and cycles are at least an hour: the shift is k0 or a neighbour.
    for k in (k0, k0 - 1, k0 + 1):
        if k < 0:
            continue
        start, end = slot_bounds(spec, k)
        if start <= at < end:
            person = spec.participants[k % len(spec.participants)]
            return Cover(start, end, person, "rotation", spec.id, rotation_rank(spec))
    return None


def rotation_covers(spec: RotationSpec, start: datetime, end: datetime) -> list[Cover]:
    """Every shift of the rotation that overlaps [start, end)."""
    if not spec.participants or start >= end:
        return []
    rank = rotation_rank(spec)
    first = max(0, _index_near(spec, start) - 1)
    last = _index_near(spec, end) + 1
    out = []
    for k in range(first, last + 1):
        s, e = slot_bounds(spec, k)
        if s < e and s < end and e > start:
            out.append(Cover(s, e, spec.participants[k % len(spec.participants)], "rotation", spec.id, rank))
    return out


def pick(covers: Iterable[Cover], at: datetime, is_active: Callable[[int], bool]) -> Cover | None:
    """The precedence winner among the covers containing `at` whose person is active."""
    best: Cover | None = None
    for c in covers:
        if c.start <= at < c.end and (best is None or c.rank > best.rank) and is_active(c.person_id):
            best = c
    return best


def timeline(
    covers: Sequence[Cover], start: datetime, end: datetime, is_active: Callable[[int], bool]
) -> list[Segment]:
    """[start, end) cut into maximal segments with one answer each (person None: nobody, a gap)."""
    live = [c for c in covers if c.start < end and c.end > start and is_active(c.person_id)]
    inner = {c.start for c in live if start < c.start < end} | {c.end for c in live if start < c.end < end}
    points = sorted({start, end} | inner)
    segments: list[Segment] = []
    # Covers sorted by start let each elementary interval look only at those already begun.
    live.sort(key=lambda c: c.start)
    begun: list[Cover] = []
    i = 0
    for a, b in pairwise(points):
        while i < len(live) and live[i].start <= a:
            begun.append(live[i])
            i += 1
        begun = [c for c in begun if c.end > a]
        best = max(begun, key=lambda c: c.rank, default=None)
        person = best.person_id if best else None
        source = best.source if best else None
        if segments and segments[-1].person_id == person and segments[-1].source == source:
            segments[-1] = Segment(segments[-1].start, b, person, source)
        else:
            segments.append(Segment(a, b, person, source))
    return segments


def person_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Segments with consecutive ones of the same person joined (an override inside one's own shift is one duty)."""
    out: list[Segment] = []
    for s in segments:
        if out and out[-1].person_id == s.person_id and out[-1].end == s.start:
            out[-1] = Segment(out[-1].start, s.end, s.person_id, out[-1].source)
        else:
            out.append(s)
    return out
