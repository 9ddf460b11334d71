"""Notices over the API: addressing, signing (who may, and twice), feedback on time or late, forwarding down."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.escalation import jobs
from app.notices.models import Notice, NoticeReceipt
from app.notify.models import OutboxMessage
from tests.duty import children, staff
from tests.factories import login, signed_in

CITY, DISTRICT, STREET = "110000", "110106", "110106001"


def _notice(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "kind": "notice",
        "title": "关于做好汛期值守工作的通知",
        "body": "各单位严格落实24小时值班和领导带班制度。",
        "to": {"scope": "children"},
        "sign_within_seconds": 1800,
    }
    body.update(overrides)
    return body


def test_a_notice_to_the_districts_is_signed_fed_back_and_forwarded(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    districts = children(session, CITY)
    streets = children(session, DISTRICT)
    posts = staff(session, clock, [CITY, DISTRICT, *streets[:2]], login={CITY, DISTRICT, streets[0]})
    city = login(client, f"duty_officer.{CITY}")
    due = (clock.now() + timedelta(hours=4)).isoformat()
    r = client.post("/api/v1/notices", json=_notice(feedback_due_at=due), headers=city)
    assert r.status_code == 201, r.text
    notice = r.json()
    assert notice["code"].startswith("N") and len(notice["code"]) == 5
    assert {x["unit_code"] for x in notice["receipts"]} == set(districts)
    assert notice["summary"]["units"] == 16 and notice["summary"]["pending"] == 16
    jobs.run_tick(engine, clock=clock)  # the receipts' chases page
    session.commit()
    pages = session.exec(select(OutboxMessage).where(OutboxMessage.incident_code == notice["code"])).all()
    assert [p.person_id for p in pages] == [posts(DISTRICT).id]  # the only staffed district's duty officer
    assert "【通知】北京市：关于做好汛期值守工作的通知。请于30分钟内回复 1 " in pages[0].body

    district = login(client, f"duty_officer.{DISTRICT}")
    signed = client.post(f"/api/v1/notices/{notice['id']}/sign", headers=district)
    assert signed.status_code == 200, signed.text
    mine = next(x for x in signed.json()["receipts"] if x["unit_code"] == DISTRICT)
    assert mine["state"] == "signed" and mine["signed_by"]["id"] == posts(DISTRICT).id and mine["signed_via"] == "api"
    again = client.post(f"/api/v1/notices/{notice['id']}/sign", headers=district).json()
    assert next(x for x in again["receipts"] if x["unit_code"] == DISTRICT)["signed_at"] == mine["signed_at"]

    # Forwarded to the district's streets: the city sees their receipts below the district's.
    fwd = client.post(f"/api/v1/notices/{notice['id']}/forward", json={"to": {"scope": "children"}}, headers=district)
    assert fwd.status_code == 200, fwd.text
    seen = client.get(f"/api/v1/notices/{notice['id']}", headers=city).json()
    below = [x for x in seen["receipts"] if x["parent_unit_code"] == DISTRICT]
    assert {x["unit_code"] for x in below} == set(streets)
    assert next(x for x in seen["receipts"] if x["unit_code"] == DISTRICT)["forwarded"] is True
    assert seen["summary"]["units"] == 16 + len(streets)

    # The street reads it and feeds back late; the district fed back in time.
    fb = client.post(f"/api/v1/notices/{notice['id']}/feedback", json={"text": "已部署"}, headers=district)
    assert fb.status_code == 200, fb.text
    clock.advance(hours=5)
    street = login(client, f"duty_officer.{streets[0]}")
    late = client.post(f"/api/v1/notices/{notice['id']}/feedback", json={"text": "已落实"}, headers=street).json()
    by_unit = {x["unit_code"]: x for x in late["receipts"]}
    assert by_unit[DISTRICT]["feedback"] == "已部署" and by_unit[DISTRICT]["feedback_late"] is False
    assert by_unit[streets[0]]["feedback_late"] is True and by_unit[streets[0]]["state"] == "signed"
    assert late["summary"]["fed_back"] == 2 and late["summary"]["late_feedback"] == 1

    inbox = client.get("/api/v1/notices", params={"box": "inbox"}, headers=street).json()
    assert [n["code"] for n in inbox["items"]] == [notice["code"]]
    city = login(client, f"duty_officer.{CITY}")  # a new shift's sign-in: the morning's token has expired
    sent = client.get("/api/v1/notices", params={"box": "sent"}, headers=city).json()
    assert sent["total"] == 1 and sent["items"][0]["summary"]["fed_back"] == 2


def test_only_the_person_on_duty_or_the_units_admin_signs(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff(session, clock, [DISTRICT, STREET], login={DISTRICT, STREET})
    district = login(client, f"duty_officer.{DISTRICT}")
    notice = client.post("/api/v1/notices", json=_notice(), headers=district).json()
    # A duty officer of the street's unit who is not on duty now, and a viewer, cannot sign for it.
    off_duty = signed_in(client, session, clock, unit=STREET, roles=["duty_officer"])
    viewer = signed_in(client, session, clock, unit=STREET, roles=["viewer"])
    for headers in (off_duty, viewer):
        assert client.post(f"/api/v1/notices/{notice['id']}/sign", headers=headers).status_code == 403
    # The district's officer cannot sign for the street either (not on duty there).
    r = client.post(f"/api/v1/notices/{notice['id']}/sign", json={"unit_code": STREET}, headers=district)
    assert r.status_code == 403
    # The street's admin may.
    admin = signed_in(client, session, clock, unit=STREET, roles=["unit_admin"])
    r = client.post(f"/api/v1/notices/{notice['id']}/sign", headers=admin)
    assert r.status_code == 200, r.text
    assert next(x for x in r.json()["receipts"] if x["unit_code"] == STREET)["state"] == "signed"


def test_bad_notices_are_refused_and_write_nothing(client: TestClient, session: Session, clock: ManualClock) -> None:
    district = signed_in(client, session, clock, unit=DISTRICT, roles=["duty_officer"])
    street = signed_in(client, session, clock, unit=STREET, roles=["duty_officer"])
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    cases = [
        (_notice(unit_code="110105"), district, 403, None),  # another district's notice
        (_notice(to={"units": ["110105001"]}), district, 403, None),  # a unit outside the subtree
        (_notice(to={"units": ["999999"]}), district, 422, "to.units"),
        (_notice(to={}), district, 422, "to"),  # nothing addressed
        (_notice(to={"tiers": ["city"]}), district, 422, "to"),  # no city below a district: empty
        (_notice(), street, 422, "to"),  # a street has no children
        (_notice(sign_within_seconds=30), district, 422, "sign_within_seconds"),
        (_notice(sign_within_seconds=90_000), district, 422, "sign_within_seconds"),
        (_notice(feedback_due_at=past), district, 422, "feedback_due_at"),
        (_notice(title=""), district, 422, "title"),
        (_notice(kind="instruction"), district, 403, None),  # a duty officer gives no instructions
    ]
    for body, headers, status, field in cases:
        r = client.post("/api/v1/notices", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if field is not None:
            assert field in [e["field"] for e in r.json()["errors"]], r.json()
    session.commit()
    assert session.exec(select(func.count()).select_from(Notice)).one() == 0
    assert session.exec(select(func.count()).select_from(NoticeReceipt)).one() == 0
    assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == 0
