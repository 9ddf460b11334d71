from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from app.clock import ManualClock
from app.org.models import Person, Unit
from app.roster import service as roster_service
from app.roster.models import Override, Rotation, Shift
from tests.factories import make_person
from tests.roster import helpers

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
STREET = "110106001"


def test_handoff_at_0830_shanghai(session: Session, clock: ManualClock) -> None:
    a = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    b = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    helpers.rotation(session, clock, unit=STREET, role="duty_officer", people=[a, b], start=date(2026, 4, 1))
    u = helpers.unit(session, STREET)
    # 2026-04-18 is day 17 from the start: a holds 04-17 08:30 → 04-18 08:30 (index 16), then b (index 17).
    before = datetime(2026, 4, 18, 8, 29, 59, tzinfo=SHANGHAI)
    at = datetime(2026, 4, 18, 8, 30, 0, tzinfo=SHANGHAI)
    assert roster_service.resolve(session, unit=u, role="duty_officer", at=before) == a
    assert roster_service.resolve(session, unit=u, role="duty_officer", at=at) == b
    assert roster_service.resolve(session, unit=u, role="leader", at=at) is None
    # Before the first handoff nobody is on duty.
    assert (
        roster_service.resolve(session, unit=u, role="duty_officer", at=datetime(2026, 4, 1, 8, 29, tzinfo=SHANGHAI))
        is None
    )


def test_handoff_stays_at_0830_local_across_dst(session: Session, clock: ManualClock) -> None:
    u = session.exec(select(Unit).where(Unit.code == "110105001")).one()
    u.timezone = "Europe/Berlin"
    session.add(u)
    session.commit()
    try:
        a = make_person(session, clock, unit=u.code, roles=["duty_officer"], password=None)
        b = make_person(session, clock, unit=u.code, roles=["duty_officer"], password=None)
        helpers.rotation(session, clock, unit=u.code, role="duty_officer", people=[a, b], start=date(2026, 3, 27))

        # Berlin springs forward on 2026-03-29 (02:00 → 03:00): the 03-28 shift lasts 23 hours, and the handoff
        # is at 08:30 local on both sides, i.e. 07:30 UTC before and 06:30 UTC after.
        def who(wall: datetime) -> Person | None:
            return roster_service.resolve(session, unit=u, role="duty_officer", at=wall.replace(tzinfo=BERLIN))

        assert who(datetime(2026, 3, 28, 8, 29, 59)) == a
        assert who(datetime(2026, 3, 28, 8, 30)) == b
        assert who(datetime(2026, 3, 29, 8, 29, 59)) == b
        assert who(datetime(2026, 3, 29, 8, 30)) == a
        assert who(datetime(2026, 3, 30, 8, 30)) == b
        assert datetime(2026, 3, 29, 8, 30, tzinfo=BERLIN).astimezone(UTC).hour == 6
        # And back in October (03:00 → 02:00): a 25-hour shift, the handoff still at 08:30.
        days = (date(2026, 10, 25) - date(2026, 3, 27)).days
        holder = [a, b][days % 2]
        other = [a, b][(days + 1) % 2]
        assert who(datetime(2026, 10, 25, 8, 29, 59)) == other
        assert who(datetime(2026, 10, 25, 8, 30)) == holder
        gaps = roster_service.gaps(
            session,
            units=[u],
            start=datetime(2026, 3, 28, tzinfo=BERLIN),
            end=datetime(2026, 11, 1, tzinfo=BERLIN),
        )
        assert [g.role for g in gaps] == ["leader"]  # duty officers cover every minute, DST or not
    finally:
        u.timezone = None
        session.add(u)
        session.commit()


def test_override_beats_shift_beats_rotation_and_inactive_people_fall_through(
    session: Session, clock: ManualClock
) -> None:
    rot, shf, ovr = (make_person(session, clock, unit=STREET, roles=["leader"], password=None) for _ in range(3))
    helpers.rotation(session, clock, unit=STREET, role="leader", people=[rot], start=date(2026, 4, 1))
    day = datetime(2026, 4, 18, 8, 30, tzinfo=SHANGHAI)
    helpers.shift(session, clock, unit=STREET, role="leader", person=shf, start=day, end=day + timedelta(hours=24))
    helpers.override(
        session,
        clock,
        unit=STREET,
        role="leader",
        person=ovr,
        start=day + timedelta(hours=2),
        end=day + timedelta(hours=4),
    )
    u = helpers.unit(session, STREET)

    def who(at: datetime) -> Person | None:
        return roster_service.resolve(session, unit=u, role="leader", at=at)

    assert who(day - timedelta(seconds=1)) == rot
    assert who(day) == shf
    assert who(day + timedelta(hours=3)) == ovr
    assert who(day + timedelta(hours=4)) == shf
    assert who(day + timedelta(hours=24)) == rot
    ovr.active = False
    session.add(ovr)
    session.commit()
    assert who(day + timedelta(hours=3)) == shf
    # resolve_many gives the same answers for many units at once, keyed by (unit id, role).
    city = helpers.unit(session, "110000")
    many = roster_service.resolve_many(session, units=[u, city], at=day + timedelta(hours=3))
    assert many == {
        (u.id, "duty_officer"): None,
        (u.id, "leader"): shf,
        (city.id, "duty_officer"): None,
        (city.id, "leader"): None,
    }


def test_day_and_night_rotations_cover_the_day_between_them(session: Session, clock: ManualClock) -> None:
    d1, d2, n1, n2 = (make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None) for _ in range(4))
    start = date(2026, 4, 1)
    helpers.rotation(
        session,
        clock,
        unit=STREET,
        role="duty_officer",
        people=[d1, d2],
        start=start,
        shift_minutes=540,
        cycle_minutes=1440,
    )
    helpers.rotation(
        session,
        clock,
        unit=STREET,
        role="duty_officer",
        people=[n1, n2],
        start=start,
        handoff=time(17, 30),
        shift_minutes=900,
        cycle_minutes=1440,
    )
    u = helpers.unit(session, STREET)

    def who(h: int, m: int, day: int = 10) -> Person | None:
        return roster_service.resolve(
            session, unit=u, role="duty_officer", at=datetime(2026, 4, day, h, m, tzinfo=SHANGHAI)
        )

    assert who(8, 30) == d2 and who(17, 29) == d2 and who(17, 30) == n2 and who(8, 29, day=11) == n2
    assert who(8, 30, day=11) == d1
    gaps = roster_service.gaps(
        session, units=[u], start=datetime(2026, 4, 2, tzinfo=SHANGHAI), end=datetime(2026, 5, 2, tzinfo=SHANGHAI)
    )
    assert {g.role for g in gaps} == {"leader"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    overrides=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 72), st.integers(1, 30)), max_size=5),
    shifts=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9)), max_size=4, unique_by=lambda t: t[1]),
    inactive=st.sets(st.integers(0, 3), max_size=2),
    probes=st.lists(st.integers(0, 96 * 60), min_size=3, max_size=6),
)
def test_stored_rosters_resolve_to_the_precedence_winner(
    engine: Engine,
    clock: ManualClock,
    overrides: list[tuple[int, int, int]],
    shifts: list[tuple[int, int]],
    inactive: set[int],
    probes: list[int],
) -> None:
    """The same rule as the pure property test, through the database and resolve_many's batched loading."""
    with Session(engine, expire_on_commit=False) as session:
        for model in (Override, Shift, Rotation):
            session.exec(delete(model))
        people = []
        for i in range(4):
            p = session.exec(select(Person).where(Person.username == f"prop{i}")).first()
            if p is None:
                p = make_person(session, clock, unit=STREET, roles=["duty_officer"], username=f"prop{i}", password=None)
            p.active = True
            session.add(p)
            people.append(p)
        session.commit()
        base = datetime(2026, 4, 18, 8, 30, tzinfo=SHANGHAI)
        helpers.rotation(session, clock, unit=STREET, role="duty_officer", people=people[:3], start=date(2026, 4, 10))
        made_overrides = []
        for who, start_h, length_h in overrides:
            s = base + timedelta(hours=start_h)
            made_overrides.append(
                (
                    helpers.override(
                        session,
                        clock,
                        unit=STREET,
                        role="duty_officer",
                        person=people[who],
                        start=s,
                        end=s + timedelta(hours=length_h),
                    ).id,
                    who,
                    s,
                    s + timedelta(hours=length_h),
                )
            )
        made_shifts = []
        for who, slot in shifts:  # 10 non-overlapping 8-hour slots
            s = base + timedelta(hours=8 * slot)
            helpers.shift(
                session,
                clock,
                unit=STREET,
                role="duty_officer",
                person=people[who],
                start=s,
                end=s + timedelta(hours=8),
            )
            made_shifts.append((who, s, s + timedelta(hours=8)))
        for i in inactive:
            people[i].active = False
            session.add(people[i])
        session.commit()
        u = helpers.unit(session, STREET)
        assert u.id is not None
        for minute in probes:
            at = base + timedelta(minutes=minute)
            expected: Person | None
            live = [o for o in made_overrides if o[2] <= at < o[3] and o[1] not in inactive]
            if live:
                expected = people[max(live)[1]]
            else:
                sh = [x for x in made_shifts if x[1] <= at < x[2] and x[0] not in inactive]
                if sh:
                    expected = people[sh[0][0]]
                else:
                    k = (at - datetime(2026, 4, 10, 8, 30, tzinfo=SHANGHAI)) // timedelta(days=1)
                    expected = people[k % 3] if k % 3 not in inactive else None
            got = roster_service.resolve_many(session, units=[u], at=at)[(u.id, "duty_officer")]
            assert got == expected, (at, overrides, shifts, inactive)
        for model in (Override, Shift, Rotation):
            session.exec(delete(model))
        session.commit()
