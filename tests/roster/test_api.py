from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.audit import AuditEntry
from app.clock import ManualClock
from app.roster.models import Shift
from tests.factories import login, make_person, signed_in
from tests.roster import helpers

SHANGHAI = ZoneInfo("Asia/Shanghai")
STREET = "110106001"  # 右安门街道, 丰台区
NOW = datetime(2026, 4, 18, 12, 0, tzinfo=SHANGHAI)


def admin(client: TestClient, session: Session, clock: ManualClock) -> dict[str, str]:
    return signed_in(client, session, clock, unit="110000", roles=["admin"])


def test_rotation_then_oncall_chain_and_board(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = admin(client, session, clock)
    a = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    b = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    lead = make_person(session, clock, unit="110106", roles=["leader"], password=None)
    r = client.post(
        "/api/v1/rotations",
        json={
            "unit_code": STREET,
            "role": "duty_officer",
            "participants": [a.id, b.username],
            "start_date": "2026-04-01",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["handoff_time"] == "08:30" and r.json()["timezone"] == "Asia/Shanghai"
    assert [p["id"] for p in r.json()["participants"]] == [a.id, b.id]
    r = client.post(
        "/api/v1/rotations",
        json={
            "unit_code": "110106",
            "role": "leader",
            "participants": [lead.id],
            "start_date": "2026-04-01",
            "shift_minutes": 10080,
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text

    chain = client.get(f"/api/v1/oncall?unit={STREET}&at=2026-04-18T08:30:00%2B08:00", headers=headers)
    assert chain.status_code == 200, chain.text
    body = chain.json()
    assert [e["unit_code"] for e in body] == [STREET, "110106", "110000"]
    assert [e["tier"] for e in body] == ["street", "district", "city"]
    assert body[0]["duty_officer"] == {"id": b.id, "name": b.name, "phone": b.phone} and body[0]["leader"] is None
    assert body[1]["leader"]["id"] == lead.id and body[2]["duty_officer"] is None
    # A literal '+' in a URL arrives as a space; "at" defaults to now (12:00 on the 18th: b's shift).
    same = client.get(f"/api/v1/oncall?unit={STREET}&at=2026-04-18T08:29:59+08:00", headers=headers).json()
    assert same[0]["duty_officer"]["id"] == a.id
    assert client.get(f"/api/v1/oncall?unit={STREET}", headers=headers).json()[0]["duty_officer"]["id"] == b.id

    board = client.get("/api/v1/oncall/board", headers=headers)
    assert board.status_code == 200
    items = board.json()["items"]
    assert len(items) == 360 and items[0]["unit_code"] == "110000"
    street = next(i for i in items if i["unit_code"] == STREET)
    assert street["duty_officer"]["id"] == b.id

    for path in ("/api/v1/oncall/board?at=yesterday", f"/api/v1/oncall?unit={STREET}&at=2026-13-45T99:00"):
        bad = client.get(path, headers=headers)
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["at"], bad.text
    assert client.get("/api/v1/oncall?unit=999999", headers=headers).status_code == 404

    listed = client.get("/api/v1/rotations?unit=110106", headers=headers).json()
    assert {r["unit_code"] for r in listed} == {STREET, "110106"}
    ended = client.delete(f"/api/v1/rotations/{listed[0]['id']}", headers=headers)
    assert ended.status_code == 200 and ended.json()["ends_at"] is not None
    assert len(client.get("/api/v1/rotations?unit=110106", headers=headers).json()) == 1
    actions = set(session.exec(select(AuditEntry.action)).all())
    assert {"rotation.create", "rotation.end"} <= actions


def test_unit_admin_edits_only_their_subtree(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    mine = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    theirs = make_person(session, clock, unit="110105001", roles=["duty_officer"], password=None)
    body = {"role": "duty_officer", "start_date": "2026-04-01"}
    r = client.post(
        "/api/v1/rotations", json={**body, "unit_code": "110105001", "participants": [theirs.id]}, headers=headers
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    ok = client.post(
        "/api/v1/rotations", json={**body, "unit_code": STREET, "participants": [mine.id]}, headers=headers
    )
    assert ok.status_code == 201
    # Someone from another district cannot be rostered at this street.
    r = client.post(
        "/api/v1/rotations", json={**body, "unit_code": STREET, "participants": [mine.id, theirs.id]}, headers=headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "participants.1"
    # A street's person may serve at the district above (their home is inside its subtree).
    r = client.post(
        "/api/v1/rotations", json={**body, "unit_code": "110106", "participants": [mine.id]}, headers=headers
    )
    assert r.status_code == 201
    window = {"starts_at": "2026-04-20T08:30:00+08:00", "ends_at": "2026-04-21T08:30:00+08:00"}
    r = client.post(
        "/api/v1/overrides",
        json={"unit_code": "110105001", "role": "leader", "person": theirs.id, **window},
        headers=headers,
    )
    assert r.status_code == 403
    viewer = signed_in(client, session, clock, unit="110106", roles=["viewer"])
    r = client.post(
        "/api/v1/overrides", json={"unit_code": STREET, "role": "leader", "person": mine.id, **window}, headers=viewer
    )
    assert r.status_code == 403
    assert client.get("/api/v1/rosters/gaps?unit=110105", headers=headers).status_code == 403
    # The board of a district admin is their subtree and the city above.
    items = client.get("/api/v1/oncall/board", headers=headers).json()["items"]
    assert items[0]["unit_code"] == "110000" and all(i["unit_code"].startswith("110106") for i in items[1:])
    # A deactivated person cannot be rostered.
    admin_headers = admin(client, session, clock)
    assert client.patch(f"/api/v1/people/{mine.id}", json={"active": False}, headers=admin_headers).status_code == 200
    r = client.post(
        "/api/v1/overrides", json={"unit_code": STREET, "role": "leader", "person": mine.id, **window}, headers=headers
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "person"


def test_shifts_routes_do_not_collide_and_check_in_needs_duty(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    headers = admin(client, session, clock)
    duty = make_person(session, clock, unit=STREET, roles=["duty_officer"], username="duty1")
    nxt = make_person(session, clock, unit=STREET, roles=["duty_officer"], username="duty2")
    other = make_person(session, clock, unit=STREET, roles=["duty_officer"], username="duty3")
    start = datetime(2026, 4, 18, 8, 30, tzinfo=SHANGHAI)
    r = client.post(
        "/api/v1/shifts",
        json={
            "unit_code": STREET,
            "role": "duty_officer",
            "person": "duty1",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(days=1)).isoformat(),
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["person"]["id"] == duty.id and r.json()["source"] == "api"
    clash = client.post(
        "/api/v1/shifts",
        json={
            "unit_code": STREET,
            "role": "duty_officer",
            "person": "duty2",
            "starts_at": (start + timedelta(hours=3)).isoformat(),
            "ends_at": (start + timedelta(days=2)).isoformat(),
        },
        headers=headers,
    )
    assert clash.status_code == 409
    r = client.post(
        "/api/v1/shifts",
        json={
            "unit_code": STREET,
            "role": "duty_officer",
            "person": "duty2",
            "starts_at": (start + timedelta(days=1)).isoformat(),
            "ends_at": (start + timedelta(days=2)).isoformat(),
        },
        headers=headers,
    )
    assert r.status_code == 201

    refused = client.post("/api/v1/shifts/check-in", json={}, headers=login(client, "duty3"))
    assert refused.status_code == 409
    assert "not on duty" in refused.json()["message"] and other.name in refused.json()["message"]

    me = login(client, "duty1")
    first = client.post("/api/v1/shifts/check-in", json={}, headers=me)
    assert first.status_code == 201, first.text
    assert first.json()["unit_code"] == STREET and first.json()["late_minutes"] == 210  # 12:00 vs 08:30
    assert client.post("/api/v1/shifts/check-in", json={}, headers=me).status_code == 200

    clock.set(start + timedelta(days=1, minutes=10))  # 10 minutes after the handoff: still time to hand over
    me = login(client, "duty1")
    h = client.post(
        "/api/v1/shifts/handover",
        json={"notes": "夜间平稳", "open_items": ["右安门内大街燃气泄漏续报"]},
        headers=me,
    )
    assert h.status_code == 201, h.text
    assert h.json()["incoming"]["id"] == nxt.id and h.json()["open_items"] == ["右安门内大街燃气泄漏续报"]
    clock.set(start + timedelta(days=1, hours=3))
    me = login(client, "duty1")
    headers = admin(client, session, clock)
    late = client.post("/api/v1/shifts/handover", json={"notes": "x"}, headers=me)
    assert late.status_code == 409

    log = client.get(
        "/api/v1/shifts/log?unit=110106&from=2026-04-18T00:00:00%2B08:00&to=2026-04-20T00:00:00%2B08:00",
        headers=headers,
    )
    assert log.status_code == 200, log.text
    assert [e["kind"] for e in log.json()["items"]] == ["check_in", "handover"]
    assert log.json()["items"][1]["incoming"]["id"] == nxt.id


def test_swap_is_one_act_and_needs_real_shifts(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = admin(client, session, clock)
    a = make_person(session, clock, unit=STREET, roles=["leader"], password=None)
    b = make_person(session, clock, unit=STREET, roles=["leader"], password=None)
    helpers.rotation(session, clock, unit=STREET, role="leader", people=[a, b], start=date(2026, 4, 1))

    def d(day: int) -> str:
        return datetime(2026, 4, day, 8, 30, tzinfo=SHANGHAI).isoformat()

    # Index 0 (04-01) is a, so a holds 04-19 (index 18) and b holds 04-20.
    body: dict[str, Any] = {
        "unit_code": STREET,
        "role": "leader",
        "first": {"person": a.id, "starts_at": d(19), "ends_at": d(20)},
        "second": {"person": b.id, "starts_at": d(20), "ends_at": d(21)},
    }
    wrong = {**body, "first": {**body["first"], "person": b.id}, "second": {**body["second"], "person": a.id}}
    assert client.post("/api/v1/overrides/swap", json=wrong, headers=headers).status_code == 409
    r = client.post("/api/v1/overrides/swap", json=body, headers=headers)
    assert r.status_code == 201, r.text

    def chain(at: str) -> dict[str, Any]:
        r = client.get(f"/api/v1/oncall?unit={STREET}&at={at.replace('+', '%2B')}", headers=headers)
        first: dict[str, Any] = r.json()[0]
        return first

    assert chain(d(19))["leader"]["id"] == b.id and chain(d(20))["leader"]["id"] == a.id
    assert (
        session.exec(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "override.swap")).one()
        == 1
    )
    gone = client.delete(f"/api/v1/overrides/{r.json()['overrides'][0]['id']}", headers=headers)
    assert gone.status_code == 200 and gone.json()["cancelled"] == 2
    assert chain(d(19))["leader"]["id"] == a.id and chain(d(20))["leader"]["id"] == b.id


def test_csv_with_one_bad_row_imports_nothing_and_names_the_row(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    headers = admin(client, session, clock)
    p = make_person(session, clock, unit=STREET, roles=["duty_officer"], username="ya.duty")
    make_person(session, clock, unit="110106", roles=["leader"], username="ft.lead")
    make_person(session, clock, unit=STREET, roles=["duty_officer"], username="ya.duty2")
    good = [
        "unit_code,role,date,person",
        f"{STREET},duty_officer,2026-05-01,ya.duty",
        f"{STREET},duty_officer,2026-05-02,{p.phone}",
        "110106,leader,2026-05-01,ft.lead",
    ]
    bad = [*good[:3], "110106,leader,2026-05-01,nobody.here", "110106,chief,2026-05-02,ft.lead"]
    r = client.post("/api/v1/rosters/import", content="\n".join(bad), headers={**headers, "content-type": "text/csv"})
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["rows[4].person", "rows[5].role"]
    assert "line 4" in r.json()["errors"][0]["message"] and "nothing was imported" in r.json()["message"]
    assert session.exec(select(func.count()).select_from(Shift)).one() == 0

    r = client.post("/api/v1/rosters/import", content="\n".join(good), headers={**headers, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"rows": 3, "created": 3, "unchanged": 0, "replaced": 0}
    first = datetime(2026, 5, 1, 8, 30, tzinfo=SHANGHAI).isoformat().replace("+", "%2B")
    assert (
        client.get(f"/api/v1/oncall?unit={STREET}&at={first}", headers=headers).json()[0]["duty_officer"]["id"] == p.id
    )

    exported = client.get("/api/v1/rosters/export?unit=110106&month=2026-05", headers=headers)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0] == "unit_code,unit_name,role,date,start,end,person,person_name" and len(lines) == 4
    assert lines[1].startswith("110106,丰台区,leader,,2026-05-01T08:30:00+08:00,2026-05-02T08:30:00+08:00,ft.lead")
    assert lines[2].startswith(
        f"{STREET},右安门街道,duty_officer,,2026-05-01T08:30:00+08:00,2026-05-02T08:30:00+08:00,ya.duty"
    )
    # The export goes back in unchanged, as a multipart upload too.
    again = client.post(
        "/api/v1/rosters/import", files={"file": ("may.csv", exported.content, "text/csv")}, headers=headers
    )
    assert again.status_code == 200 and again.json() == {"rows": 3, "created": 0, "unchanged": 3, "replaced": 0}
    # A corrected table replaces what it overlaps.
    fix = (
        "unit_code,role,start,end,person\n"
        f"{STREET},duty_officer,2026-05-02T08:30:00+08:00,2026-05-03T08:30:00+08:00,ya.duty2\n"
    )
    r = client.post("/api/v1/rosters/import", content=fix, headers={**headers, "content-type": "text/csv"})
    assert r.json() == {"rows": 1, "created": 1, "unchanged": 0, "replaced": 1}
    session.rollback()  # a fresh snapshot: the test's session must see what the requests committed
    assert session.exec(select(func.count()).select_from(Shift)).one() == 3
    assert (
        session.exec(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "roster.import")).one()
        == 3
    )

    for text, field in (("who,what\n1,2\n", "header"), ("", "file")):
        r = client.post("/api/v1/rosters/import", content=text, headers={**headers, "content-type": "text/csv"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, r.text
    assert client.get("/api/v1/rosters/export?unit=110106&month=2026-5", headers=headers).status_code == 422


def test_gaps_report_for_a_subtree(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = admin(client, session, clock)
    p = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    helpers.rotation(session, clock, unit=STREET, role="duty_officer", people=[p], start=date(2026, 4, 1))
    helpers.override(
        session,
        clock,
        unit=STREET,
        role="leader",
        person=p,
        start=datetime(2026, 4, 19, 8, 30, tzinfo=SHANGHAI),
        end=datetime(2026, 4, 20, 8, 30, tzinfo=SHANGHAI),
    )
    r = client.get(
        f"/api/v1/rosters/gaps?unit={STREET}&from=2026-04-19T00:00:00%2B08:00&to=2026-04-21T00:00:00%2B08:00",
        headers=headers,
    )
    assert r.status_code == 200, r.text
    gaps = [(g["role"], g["start"], g["end"]) for g in r.json()["items"]]
    assert gaps == [
        ("leader", "2026-04-18T16:00:00Z", "2026-04-19T00:30:00Z"),
        ("leader", "2026-04-20T00:30:00Z", "2026-04-20T16:00:00Z"),
    ]
    district = client.get("/api/v1/rosters/gaps?unit=110106", headers=headers).json()["items"]
    assert len({g["unit_code"] for g in district}) == 27  # the district and its 26 streets, all but one empty
    assert (
        client.get("/api/v1/rosters/gaps?unit=110106&from=2026-04-19&to=2026-01-01", headers=headers).status_code == 422
    )


def test_calendar_feed_by_secret_link(client: TestClient, session: Session, clock: ManualClock) -> None:
    p = make_person(session, clock, unit=STREET, roles=["duty_officer"], username="cal.me")
    q = make_person(session, clock, unit=STREET, roles=["duty_officer"], password=None)
    helpers.rotation(session, clock, unit=STREET, role="duty_officer", people=[p, q], start=date(2026, 4, 1))
    me = login(client, "cal.me")
    link = client.get(f"/api/v1/people/{p.id}/calendar-url", headers=me)
    assert link.status_code == 200
    token = link.json()["token"]
    assert link.json()["url"].endswith(f"/api/v1/people/{p.id}/calendar.ics?token={token}")
    feed = client.get(f"/api/v1/people/{p.id}/calendar.ics?token={token}")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    from icalendar import Calendar

    events = list(Calendar.from_ical(feed.content).walk("VEVENT"))
    assert len(events) == 54  # every other day from the start (04-01) to 90 days ahead (07-17)
    assert all(e.decoded("dtend") - e.decoded("dtstart") == timedelta(days=1) for e in events)
    assert "值班员" in str(events[0]["summary"])
    assert client.get(f"/api/v1/people/{p.id}/calendar.ics?token={'0' * 40}").status_code == 404
    assert client.get(f"/api/v1/people/{q.id}/calendar-url", headers=me).status_code == 403
    rotated = client.post(f"/api/v1/people/{p.id}/calendar-url/rotate", headers=me).json()["token"]
    assert rotated != token
    assert client.get(f"/api/v1/people/{p.id}/calendar.ics?token={token}").status_code == 404
    assert client.get(f"/api/v1/people/{p.id}/calendar.ics?token={rotated}").status_code == 200


def test_a_csv_the_csv_module_cannot_read_is_a_422_naming_the_file(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    """Found by the fuzz drill: a lone carriage return (`\\rb`) was a 500. Old Mac line ends now read as lines,
    and what the csv module still refuses (a field past its size limit) is a 422 naming `file`; nothing changes."""
    headers = {**admin(client, session, clock), "content-type": "text/csv"}
    r = client.post("/api/v1/rosters/import", content="\rb", headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file", r.text
    huge = "unit_code,role,date,person\n" + "x" * 200_000
    r = client.post("/api/v1/rosters/import", content=huge, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file", r.text
    make_person(session, clock, unit=STREET, roles=["duty_officer"], username="mac.duty")
    mac = f"unit_code,role,date,person\r{STREET},duty_officer,2026-05-01,mac.duty\r"
    r = client.post("/api/v1/rosters/import", content=mac, headers=headers)
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
