"""Gaps are found when they are made: a change that opens a roster gap within the next 72 h answers with it and
alerts the unit's admins and its duty officer at once (through the outbox), not at the next 07:00 run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.clock import ManualClock
from app.notify.models import OutboxMessage
from app.org.models import Person
from app.org.schemas import PersonUpdate
from app.roster import gaps as gaps_made
from app.roster import service as roster_service
from app.roster.models import Override, Rotation, Shift
from tests.conftest import START
from tests.factories import make_person, signed_in
from tests.roster.helpers import SYSTEM, override, rotation, shift
from tests.web.helpers import console_sign_in

STREET = "110106001"
HORIZON_END = START + timedelta(hours=72)


@dataclass
class Street:
    duty_a: Person
    duty_b: Person
    admin: Person
    duty_rotation: Rotation


def _staffed(session: Session, clock: ManualClock) -> Street:
    """右安门街道 covered around the clock: duty officers a/b alternate daily at 08:30, one leader, an admin."""
    duty_a = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    duty_b = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    leader = make_person(session, clock, unit=STREET, roles=["leader"])
    admin = make_person(session, clock, unit=STREET, roles=["unit_admin"])
    day0 = (START - timedelta(days=3)).date()  # 04-15: a, 04-16: b, 04-17: a, 04-18 (now): b, …
    duty = rotation(session, clock, unit=STREET, role="duty_officer", people=[duty_a, duty_b], start=day0)
    rotation(session, clock, unit=STREET, role="leader", people=[leader], start=day0)
    return Street(duty_a, duty_b, admin, duty)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return START.replace(day=day, hour=hour, minute=minute)


def _spans(gaps: list[dict[str, Any]]) -> list[tuple[str, str, datetime, datetime]]:
    return [
        (g["unit_code"], g["role"], datetime.fromisoformat(g["start"]), datetime.fromisoformat(g["end"])) for g in gaps
    ]


def _gap_pages(session: Session) -> list[OutboxMessage]:
    session.commit()  # a fresh snapshot (SQLite WAL keeps the old one until the read transaction ends)
    return list(session.exec(select(OutboxMessage).where(OutboxMessage.template == "roster_gap")).all())


def test_deactivating_a_rostered_person_answers_with_the_gaps_and_alerts_at_once(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = _staffed(session, clock)
    district = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])

    r = client.patch(f"/api/v1/people/{street.duty_b.id}", json={"active": False}, headers=district)
    assert r.status_code == 200, r.text
    # b held today's shift (until 04-19 08:30) and 04-20's: both are empty now, within the next 72 h.
    assert _spans(r.json()["gaps_opened"]) == [
        (STREET, "duty_officer", START, _at(19, 8, 30)),
        (STREET, "duty_officer", _at(20, 8, 30), _at(21, 8, 30)),
    ]
    # What the gap report now shows for those hours, told at once to the street's admin (its duty officer
    # post is the one vacated, so nobody else is on duty there to tell).
    report = client.get(
        "/api/v1/rosters/gaps",
        params={"unit": STREET, "from": START.isoformat(), "to": HORIZON_END.isoformat()},
        headers=district,
    ).json()["items"]
    assert _spans(report) == _spans(r.json()["gaps_opened"])
    pages = _gap_pages(session)
    assert sorted((p.recipient, p.params["start"]) for p in pages) == [
        (street.admin.phone, "04-18 12:00"),
        (street.admin.phone, "04-20 08:30"),
    ]
    assert all(p.body.startswith("【排班缺口】右安门街道值班员") for p in pages)

    # A change that opens nothing answers with nothing and pages nobody.
    idle = make_person(session, clock, unit=STREET, roles=["viewer"])
    r = client.patch(f"/api/v1/people/{idle.id}", json={"active": False}, headers=district)
    assert r.status_code == 200 and r.json()["gaps_opened"] == []
    r = client.patch(f"/api/v1/people/{street.duty_a.id}", json={"name": "改名"}, headers=district)
    assert r.status_code == 200 and r.json()["gaps_opened"] == []
    assert len(_gap_pages(session)) == 2


def test_ending_a_rotation_and_cancelling_an_override_answer_with_their_gaps(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = _staffed(session, clock)
    headers = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    # An override over time the rotation covers anyway: cancelling it opens nothing.
    cover = override(
        session, clock, unit=STREET, role="leader", person=street.duty_a, start=_at(18, 14), end=_at(18, 16)
    )
    r = client.delete(f"/api/v1/overrides/{cover.id}", headers=headers)
    assert r.status_code == 200 and r.json() == {"cancelled": 1, "gaps_opened": []}
    assert _gap_pages(session) == []

    ends = _at(19, 18)
    r = client.patch(
        f"/api/v1/rotations/{street.duty_rotation.id}", json={"ends_at": ends.isoformat()}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert _spans(r.json()["gaps_opened"]) == [(STREET, "duty_officer", ends, HORIZON_END)]
    # The street's admin and the duty officer on duty now (b) are told.
    assert {p.recipient for p in _gap_pages(session)} == {street.admin.phone, street.duty_b.phone}

    # An override fills part of the hole; cancelling it opens that part again.
    session.expunge_all()  # the cancelled override's id may be reused (SQLite): forget the old row
    fill = override(
        session,
        clock,
        unit=STREET,
        role="duty_officer",
        person=street.duty_a,
        start=ends,
        end=ends + timedelta(hours=6),
    )
    r = client.delete(f"/api/v1/overrides/{fill.id}", headers=headers)
    assert r.status_code == 200
    assert _spans(r.json()["gaps_opened"]) == [(STREET, "duty_officer", ends, ends + timedelta(hours=6))]


def test_gaps_beyond_the_alert_horizon_are_not_reported_as_opened(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = _staffed(session, clock)
    headers = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    later = START + timedelta(days=5)
    r = client.patch(
        f"/api/v1/rotations/{street.duty_rotation.id}", json={"ends_at": later.isoformat()}, headers=headers
    )
    assert r.status_code == 200 and r.json()["gaps_opened"] == []
    assert _gap_pages(session) == []


def test_preview_shows_the_gaps_a_change_would_open_without_writing(session: Session, clock: ManualClock) -> None:
    street = _staffed(session, clock)
    assert street.duty_b.id is not None and street.duty_rotation.id is not None
    opened = gaps_made.preview_update_person(
        session, clock=clock, actor=SYSTEM, person_id=street.duty_b.id, data=PersonUpdate(active=False)
    )
    assert [(g.role, g.start, g.end) for g in opened] == [
        ("duty_officer", START, _at(19, 8, 30)),
        ("duty_officer", _at(20, 8, 30), _at(21, 8, 30)),
    ]
    ended = gaps_made.preview_end_rotation(
        session, clock=clock, actor=SYSTEM, rotation_id=street.duty_rotation.id, ends_at=None
    )
    assert [(g.start, g.end) for g in ended] == [(START, HORIZON_END)]
    session.commit()
    session.expire_all()
    person = session.get(Person, street.duty_b.id)
    rot = session.get(Rotation, street.duty_rotation.id)
    assert person is not None and person.active and rot is not None and rot.ends_at is None
    assert _gap_pages(session) == []


def test_deleting_a_shift_answers_with_the_gaps_it_opens_and_is_scoped(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = _staffed(session, clock)
    headers = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    ends = _at(19, 18)
    r = client.patch(
        f"/api/v1/rotations/{street.duty_rotation.id}", json={"ends_at": ends.isoformat()}, headers=headers
    )
    assert r.status_code == 200, r.text
    # An explicit shift fills four hours of the hole the rotation's end left.
    shift(session, clock, unit=STREET, role="duty_officer", person=street.duty_a, start=ends,
          end=ends + timedelta(hours=4))  # fmt: skip
    made = session.exec(select(Shift).where(Shift.person_id == street.duty_a.id)).one()
    before = len(_gap_pages(session))

    other = signed_in(client, session, clock, unit="110105", roles=["unit_admin"])  # 朝阳区: not theirs
    assert client.delete(f"/api/v1/shifts/{made.id}", headers=other).status_code == 404
    officer = signed_in(client, session, clock, unit="110106", roles=["duty_officer"])  # not a roster admin
    assert client.delete(f"/api/v1/shifts/{made.id}", headers=officer).status_code == 403
    assert client.delete("/api/v1/shifts/999999", headers=headers).status_code == 404

    r = client.delete(f"/api/v1/shifts/{made.id}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == 1
    assert _spans(r.json()["gaps_opened"]) == [(STREET, "duty_officer", ends, ends + timedelta(hours=4))]
    assert len(_gap_pages(session)) > before  # told at once
    assert session.exec(select(Shift).where(Shift.id == made.id)).first() is None


def test_the_console_shows_the_gaps_before_an_override_is_cancelled(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = _staffed(session, clock)
    admin = make_person(session, clock, unit="110106", roles=["unit_admin"])
    ends = _at(19, 18)
    roster_service.end_rotation(session, clock=clock, actor=SYSTEM, rotation_id=street.duty_rotation.id or 0,
                                ends_at=ends)  # fmt: skip
    session.commit()
    fill = override(session, clock, unit=STREET, role="duty_officer", person=street.duty_a, start=ends,
                    end=ends + timedelta(hours=6))  # fmt: skip
    fill_id = fill.id
    csrf = console_sign_in(client, admin.username or "")
    url = f"/console/overrides/{fill_id}/cancel"

    asked = client.post(url, data={"csrf": csrf, "unit_code": STREET}, follow_redirects=False)
    assert asked.status_code == 200 and 'id="confirm-gaps"' in asked.text
    assert "04-19 18:00 至 04-20 00:00" in asked.text and 'name="confirm" value="yes"' in asked.text
    session.commit()  # a fresh snapshot: the server wrote in its own connection
    session.expire_all()
    assert session.get(Override, fill_id) is not None and _gap_pages(session) == []  # nothing changed yet

    done = client.post(url, data={"csrf": csrf, "unit_code": STREET, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303
    session.commit()  # a fresh snapshot: the server wrote in its own connection
    session.expire_all()
    assert session.get(Override, fill_id) is None
    assert {p.recipient for p in _gap_pages(session)} >= {street.admin.phone}  # told at once, as the API does
