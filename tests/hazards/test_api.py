"""The register over HTTP: report, read, list with filters, and bad input refused with nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.audit import AuditEntry
from app.clock import ManualClock
from app.config import Settings
from app.hazards.models import Hazard, HazardEntry, HazardPhoto
from tests.hazards.helpers import DISTRICT, OTHER_STREET, STREET, create, hazard_body, image_bytes, photo, team


def counts(session: Session) -> tuple[int, int, int, int]:
    session.commit()  # a fresh snapshot
    return (
        session.exec(select(func.count()).select_from(Hazard)).one(),
        session.exec(select(func.count()).select_from(HazardEntry)).one(),
        session.exec(select(func.count()).select_from(HazardPhoto)).one(),
        session.exec(select(func.count()).select_from(AuditEntry).where(AuditEntry.object_type == "hazard")).one(),
    )


def test_an_inspector_reports_a_hazard_and_reads_it_back(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    t = team(client, session, clock)
    created = create(client, t["inspector"], clock)
    assert created["code"].startswith("H") and len(created["code"]) == 7
    assert created["status"] == "open"
    assert created["unit_name"] == "右安门街道"
    assert created["responsible_phone"] == "+8613800138000"
    assert created["venue_category_name"] == "医院"
    assert created["deadline"] == "2026-04-25"
    assert created["overdue"] is False
    assert [e["kind"] for e in created["timeline"]] == ["reported"]
    # An inspector does not verify, list or extend; they plan and add photos.
    assert created["actions"] == ["plan", "photo"]

    got = client.get(f"/api/v1/hazards/{created['id']}", headers=t["street_leader"]).json()
    assert got["code"] == created["code"]
    audit = client.get("/api/v1/audit?object_type=hazard", headers=t["city_admin"]).json()
    assert [e["action"] for e in audit["items"]] == ["hazard.create"]


def test_the_list_filters_by_unit_status_level_category_and_overdue(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    t = team(client, session, clock)
    major = create(client, t["inspector"], clock)
    general = create(client, t["inspector"], clock, level="general", basis="", venue_category="ebike", venue="小区车棚",
                     deadline="2026-04-24")  # fmt: skip
    elsewhere = create(client, t["other_inspector"], clock, unit_code=OTHER_STREET, venue="某养老院",
                       venue_category="elderly_care")  # fmt: skip

    def codes(query: str, who: str = "district_leader") -> list[str]:
        r = client.get(f"/api/v1/hazards{query}", headers=t[who])
        assert r.status_code == 200, r.text
        return [h["code"] for h in r.json()["items"]]

    assert codes("") == [elsewhere["code"], general["code"], major["code"]]
    assert codes(f"?unit={STREET}") == [general["code"], major["code"]]
    assert codes("?level=major") == [elsewhere["code"], major["code"]]
    assert codes("?category=ebike") == [general["code"]]
    assert codes("?status=open&unit=" + OTHER_STREET) == [elsewhere["code"]]
    assert codes("?overdue=true") == []
    # The street's people see their street only.
    assert codes("", who="inspector") == [general["code"], major["code"]]
    clock.advance(days=8)
    assert set(codes("?overdue=true")) == {major["code"], general["code"], elsewhere["code"]}
    listed = client.get("/api/v1/hazards?overdue=true&limit=1", headers=t["district_leader"]).json()
    assert listed["total"] == 3 and len(listed["items"]) == 1
    assert listed["items"][0]["days_overdue"] == 1
    # Overdue first, page by page: the street's two overdue (oldest deadline first), then the rest, newest first.
    later = create(client, t["inspector"], clock, deadline="2026-05-30")
    pages = [client.get(f"/api/v1/hazards?unit={STREET}&sort=overdue&limit=1&offset={n}", headers=t["inspector"]).json()
             for n in range(4)]  # fmt: skip
    assert [p["items"][0]["code"] if p["items"] else None for p in pages] == [
        general["code"], major["code"], later["code"], None,
    ]  # fmt: skip
    assert all(p["total"] == 3 for p in pages)


def test_bad_reports_are_refused_naming_the_field_and_nothing_is_written(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    t = team(client, session, clock)
    before = counts(session)

    def refused(status: int, field: str, who: str = "inspector", **overrides: Any) -> dict[str, Any]:
        r = client.post("/api/v1/hazards", json=hazard_body(clock, **overrides), headers=t[who])
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        if field:
            assert field in [e["field"] for e in body["errors"]], body
        return body

    body = refused(422, "deadline", deadline="2026-04-17")
    assert "before found_at" in body["errors"][0]["message"]
    body = refused(422, "venue_category", venue_category="school")
    assert "unknown category" in body["message"]
    refused(422, "level", level="huge")
    refused(422, "basis", basis="")  # a major hazard needs its basis
    refused(422, "responsible_phone", responsible_phone="12345")
    refused(422, "found_at", found_at="2026-04-18T12:00:00")  # no offset
    refused(422, "found_at", found_at="2026-05-18T12:00:00+08:00")  # in the future
    refused(422, "unit_code", unit_code="110000")  # the city itself
    refused(422, "unit_code", unit_code="999999999")
    body = refused(403, "", unit_code=OTHER_STREET)  # outside the inspector's subtree
    assert "outside the scope" in body["message"]
    refused(403, "", who="street_duty")  # a duty officer does not register hazards
    refused(422, "extra", extra="x")
    assert counts(session) == before


def test_transitions_the_state_or_role_does_not_allow_are_refused_naming_both(
    client: TestClient, session: Session, clock: ManualClock, settings: Settings
) -> None:
    t = team(client, session, clock)
    h = create(client, t["inspector"], clock)
    hid = h["id"]
    before = counts(session)
    r = client.post(f"/api/v1/hazards/{hid}/submit", json={}, headers=t["inspector"])
    assert r.status_code == 409 and r.json()["code"] == "hazard_state"
    assert "submit" in r.json()["message"] and "open" in r.json()["message"]
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": True}, headers=t["district_leader"])
    assert r.status_code == 409 and "verify" in r.json()["message"] and "open" in r.json()["message"]
    # Roles: an inspector verifies nothing; a street leader may not verify a major hazard; nobody outside sees it.
    plan = {"measures": "清理通道", "person": "王院长", "funds_cny": 5000}
    assert client.post(f"/api/v1/hazards/{hid}/plan", json=plan, headers=t["inspector"]).status_code == 200
    assert photo(client, t["inspector"], hid).status_code == 201
    assert client.post(f"/api/v1/hazards/{hid}/submit", json={}, headers=t["inspector"]).status_code == 200
    before = counts(session)
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": True}, headers=t["inspector"])
    assert r.status_code == 403 and r.json()["code"] == "hazard_role"
    assert "verify" in r.json()["message"] and "inspector" in r.json()["message"]
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": True}, headers=t["street_leader"])
    assert r.status_code == 403 and "tier above" in r.json()["message"] and "leader" in r.json()["message"]
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": True}, headers=t["other_district_leader"])
    assert r.status_code == 404
    r = client.post(f"/api/v1/hazards/{hid}/extension", json={"until": "2026-05-30", "reason": "x"},
                    headers=t["street_leader"])  # fmt: skip
    assert r.status_code == 403 and "extension" in r.json()["message"]
    r = client.post(
        f"/api/v1/hazards/{hid}/listing", json={"tier": "city", "reason": "x"}, headers=t["district_leader"]
    )
    assert r.status_code == 403 and "listing" in r.json()["message"]
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": False}, headers=t["district_leader"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "note"
    assert counts(session) == before
    # A general hazard is verified by its own unit's leader; an extension never is.
    g = create(client, t["inspector"], clock, level="general", basis="")
    r = client.post(f"/api/v1/hazards/{g['id']}/listing", json={"tier": "district", "reason": "x"},
                    headers=t["district_leader"])  # fmt: skip
    assert r.status_code == 409 and "major" in r.json()["message"]
    assert client.post(f"/api/v1/hazards/{g['id']}/plan", json=plan, headers=t["inspector"]).status_code == 200
    r = client.post(f"/api/v1/hazards/{g['id']}/plan", json={**plan, "deadline": "2026-05-30"}, headers=t["inspector"])
    assert r.status_code == 409 and "extension" in r.json()["message"]
    assert photo(client, t["inspector"], g["id"]).status_code == 201
    assert client.post(f"/api/v1/hazards/{g['id']}/submit", headers=t["inspector"]).status_code == 200
    r = client.post(f"/api/v1/hazards/{g['id']}/verify", json={"passed": True}, headers=t["street_leader"])
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert r.json()["timeline"][-1]["kind"] == "closed"
    r = client.post(f"/api/v1/hazards/{g['id']}/photos", files={"file": ("a.jpg", image_bytes(), "image/jpeg")},
                    data={"phase": "after"}, headers=t["inspector"])  # fmt: skip
    assert r.status_code == 409 and "closed" in r.json()["message"]
    _ = (settings, DISTRICT)


def test_submit_needs_an_after_photo(client: TestClient, session: Session, clock: ManualClock) -> None:
    t = team(client, session, clock)
    h = create(client, t["inspector"], clock)
    client.post(f"/api/v1/hazards/{h['id']}/plan", json={"measures": "m", "person": "p"}, headers=t["inspector"])
    assert photo(client, t["inspector"], h["id"], phase="before").status_code == 201
    r = client.post(f"/api/v1/hazards/{h['id']}/submit", json={}, headers=t["inspector"])
    assert r.status_code == 409 and "after photo" in r.json()["message"]
    _ = Path
