"""The views the console renders: one unit's month cut in the unit's own zone, and the duty board."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from app.auth import service as auth_service
from app.clock import ManualClock
from app.roster import imports, practice
from app.roster import views as roster_views
from app.roster.resolve import default_zone, set_default_timezone
from app.roster.schemas import CheckInRequest, HandoverRequest
from tests.factories import make_person
from tests.roster import helpers

SHANGHAI = ZoneInfo("Asia/Shanghai")
STREET = "110106001"


@pytest.fixture
def shanghai_street_on_a_utc_server(session: Session) -> Iterator[None]:
    """The street keeps Beijing time while the process default is UTC (a server left at DUTYLINE_TIMEZONE=UTC)."""
    before = default_zone().key
    unit = helpers.unit(session, STREET)
    unit.timezone = "Asia/Shanghai"
    session.add(unit)
    session.commit()
    set_default_timezone("UTC")
    try:
        yield
    finally:
        set_default_timezone(before)
        unit.timezone = None
        session.add(unit)
        session.commit()


@pytest.mark.usefixtures("shanghai_street_on_a_utc_server")
def test_the_month_grid_cuts_months_and_days_in_the_units_zone_like_the_csv_export(
    session: Session, clock: ManualClock
) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None, name="夜班甲")
    # The night shift of the last evening of January, Beijing time: 20:00 on the 31st to 08:00 on 1 February.
    start = datetime(2027, 1, 31, 20, 0, tzinfo=SHANGHAI)
    helpers.shift(
        session, clock, unit=STREET, role="duty_officer", person=person, start=start, end=start + timedelta(hours=12)
    )
    admin = auth_service.person_principal(session, person.id or 0)
    csv = imports.export_csv(session, actor=admin, unit_code=STREET, month="2027-01")
    assert "2027-01-31T20:00:00+08:00" in csv  # the export puts the shift in January, in the street's zone

    january = roster_views.month_grid(session, actor=admin, unit_code=STREET, month="2027-01", now=clock.now())
    assert january.zone.key == "Asia/Shanghai"
    assert january.start == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert january.end == datetime(2027, 2, 1, tzinfo=SHANGHAI)
    last = january.days[-1]
    assert last.date.isoformat() == "2027-01-31"
    mine = [c for c in last.cells["duty_officer"] if c.person is not None]
    assert [(c.wall_start.strftime("%H:%M"), c.wall_end.strftime("%m-%d %H:%M")) for c in mine] == [
        ("20:00", "02-01 00:00")
    ]
    assert mine[0].person is not None and mine[0].person.name == "夜班甲"
    # The rest of the 31st is a gap, and it is the 31st's own gap (00:00–20:00 Beijing), not a UTC day's.
    assert [(c.wall_start.hour, c.wall_end.hour) for c in last.cells["duty_officer"] if c.person is None] == [(0, 20)]

    # Nobody leads on any day: each day is one whole-day gap (shown as 全天), not a midnight-to-midnight range.
    assert all([(c.person, c.whole_day) for c in d.cells["leader"]] == [(None, True)] for d in january.days)
    assert not mine[0].whole_day

    february = roster_views.month_grid(session, actor=admin, unit_code=STREET, month="2027-02", now=clock.now())
    first = february.days[0]
    morning = [c for c in first.cells["duty_officer"] if c.person is not None]
    assert [(c.wall_start.strftime("%H:%M"), c.wall_end.strftime("%H:%M")) for c in morning] == [("00:00", "08:00")]
    assert len(february.days) == 28 and february.prev_month == "2027-01" and february.next_month == "2027-03"


def test_a_bad_month_is_refused_naming_the_field(session: Session, clock: ManualClock) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    actor = auth_service.person_principal(session, person.id or 0)
    with pytest.raises(Exception, match="YYYY-MM") as caught:
        roster_views.month_grid(session, actor=actor, unit_code=STREET, month="2027-13", now=clock.now())
    assert getattr(caught.value, "status", None) == 422


def test_the_board_asks_for_a_check_in_only_from_whoever_holds_a_post_and_has_not_checked_in(
    session: Session, clock: ManualClock
) -> None:
    on = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    off = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    now = clock.now()
    helpers.override(
        session, clock, unit=STREET, role="duty_officer", person=on, start=now, end=now + timedelta(hours=8)
    )
    on_actor = auth_service.person_principal(session, on.id or 0)
    off_actor = auth_service.person_principal(session, off.id or 0)

    board = roster_views.duty_board(session, actor=on_actor, person=on, unit_code=STREET, at=now)
    assert [(p.unit_code, p.role) for p in board.check_in_due] == [(STREET, "duty_officer")]
    off_board = roster_views.duty_board(session, actor=off_actor, person=off, unit_code=STREET, at=now)
    assert off_board.mine == [] and off_board.check_in_due == []

    practice.check_in(session, clock=clock, actor=on_actor, data=CheckInRequest())
    session.commit()
    board = roster_views.duty_board(session, actor=on_actor, person=on, unit_code=STREET, at=now)
    assert [(p.unit_code, p.role) for p in board.mine] == [(STREET, "duty_officer")]
    assert board.check_in_due == []
    # Looking at the district's board, one's own post still counts: a check-in is about one's shift, not the page.
    district = roster_views.duty_board(session, actor=on_actor, person=on, unit_code="110106", at=now)
    assert district.mine == board.mine and [e.unit_code for e in district.below] == [STREET]


def test_the_board_shows_the_last_handover_of_each_role(session: Session, clock: ManualClock) -> None:
    out = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None, name="交班人")
    nxt = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None, name="接班人")
    now = clock.now()
    helpers.override(
        session, clock, unit=STREET, role="duty_officer", person=out, start=now - timedelta(hours=8), end=now
    )
    actor = auth_service.person_principal(session, out.id or 0)
    for text in ("第一次", "第二次"):
        practice.handover(
            session, clock=clock, actor=actor, data=HandoverRequest(notes=text, open_items=["回访"], incoming=nxt.id)
        )
        session.commit()
        clock.advance(timedelta(minutes=5))
    nxt_actor = auth_service.person_principal(session, nxt.id or 0)
    board = roster_views.duty_board(session, actor=nxt_actor, person=nxt, unit_code=STREET, at=clock.now())
    assert [(h.role, h.notes, h.outgoing.name, h.incoming.name if h.incoming else None) for h in board.handovers] == [
        ("duty_officer", "第二次", "交班人", "接班人")
    ]
    assert board.handovers[0].open_items == ["回访"]
