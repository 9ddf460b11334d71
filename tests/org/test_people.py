from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.org.models import Person
from tests.factories import PASSWORD, login, make_person, signed_in


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "孙丽",
        "phone": "13912345678",
        "unit_code": "110106001",
        "roles": ["duty_officer"],
        "username": "sunli",
        "password": "Duty-2026-pw",
    }
    data.update(overrides)
    return data


def count_people(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Person)).one()


def test_admin_creates_a_person_stored_as_e164_without_the_password(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post("/api/v1/people", json=body(), headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["phone"] == "+8613912345678"
    assert created["unit_code"] == "110106001" and created["unit_name"] == "右安门街道"
    assert "password" not in created and "password_hash" not in created
    stored = session.get(Person, created["id"])
    assert stored is not None and stored.password_hash and stored.password_hash.startswith("$argon2id$")
    assert client.get(f"/api/v1/people/{created['id']}", headers=headers).json()["username"] == "sunli"
    login(client, "sunli", "Duty-2026-pw")


def test_invalid_phone_is_422_naming_phone_and_creates_nothing(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    before = count_people(session)
    for phone in ("12345678901", "010-63451234", "not a number"):
        r = client.post("/api/v1/people", json=body(phone=phone), headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert [e["field"] for e in r.json()["errors"]] == ["phone"]
    assert count_people(session) == before


def test_bad_fields_are_named(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post("/api/v1/people", json=body(roles=["superuser"], surprise=1), headers=headers)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"roles.0", "surprise"}
    r = client.post("/api/v1/people", json=body(password="short"), headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    r = client.post("/api/v1/people", json=body(unit_code="110199001"), headers=headers)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "unit_code"
    r = client.post("/api/v1/people", content=b"{not json", headers={**headers, "content-type": "application/json"})
    assert r.status_code == 422


def test_duplicate_username_is_409(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    assert client.post("/api/v1/people", json=body(), headers=headers).status_code == 201
    r = client.post("/api/v1/people", json=body(phone="13912345679"), headers=headers)
    assert r.status_code == 409 and "sunli" in r.json()["message"]


def test_district_admin_acts_only_in_its_own_subtree(client: TestClient, session: Session, clock: ManualClock) -> None:
    fengtai = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    chaoyang_person = make_person(session, clock, unit="110105001", roles=["duty_officer"])
    before = count_people(session)

    r = client.post("/api/v1/people", json=body(unit_code="110105001"), headers=fengtai)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = client.post("/api/v1/people", json=body(unit_code="110105"), headers=fengtai)
    assert r.status_code == 403
    r = client.post("/api/v1/people", json=body(unit_code="110000"), headers=fengtai)
    assert r.status_code == 403
    r = client.patch(f"/api/v1/people/{chaoyang_person.id}", json={"name": "x"}, headers=fengtai)
    assert r.status_code == 404  # outside one's scope is indistinguishable from absent
    assert count_people(session) == before

    r = client.post("/api/v1/people", json=body(unit_code="110106001"), headers=fengtai)
    assert r.status_code == 201
    own = r.json()["id"]
    r = client.patch(f"/api/v1/people/{own}", json={"unit_code": "110105001"}, headers=fengtai)
    assert r.status_code == 403  # cannot move someone out of the subtree either
    assert client.get(f"/api/v1/people/{own}", headers=fengtai).json()["unit_code"] == "110106001"


def test_roles_cannot_be_granted_above_ones_own(client: TestClient, session: Session, clock: ManualClock) -> None:
    fengtai = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    r = client.post("/api/v1/people", json=body(roles=["admin"]), headers=fengtai)
    assert r.status_code == 403
    officer = signed_in(client, session, clock, unit="110106", roles=["duty_officer"])
    r = client.post("/api/v1/people", json=body(), headers=officer)
    assert r.status_code == 403 and "people:write" in r.json()["message"]


def test_listing_is_limited_to_scope_and_paginated(client: TestClient, session: Session, clock: ManualClock) -> None:
    fengtai = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    for unit in ("110106001", "110106002", "110105001"):
        make_person(session, clock, unit=unit, roles=["leader"])
    r = client.get("/api/v1/people", params={"role": "leader"}, headers=fengtai)
    assert r.status_code == 200
    assert sorted(p["unit_code"] for p in r.json()["items"]) == ["110106001", "110106002"]
    r = client.get("/api/v1/people", params={"limit": 1}, headers=fengtai)
    assert len(r.json()["items"]) == 1 and r.json()["total"] == 3
    assert client.get("/api/v1/people", params={"limit": 100000}, headers=fengtai).status_code == 422


def test_deactivated_people_cannot_sign_in_and_stay_on_record(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    person = make_person(session, clock, unit="110106001", roles=["duty_officer"])
    their_token = login(client, person.username or "")
    r = client.patch(f"/api/v1/people/{person.id}", json={"active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False
    r = client.post("/api/v1/auth/token", data={"username": person.username, "password": PASSWORD})
    assert r.status_code == 401
    assert client.get("/api/v1/me", headers=their_token).status_code == 401
    assert client.get(f"/api/v1/people/{person.id}", headers=admin).status_code == 200
    assert client.patch(f"/api/v1/people/{person.id}", json={"name": None}, headers=admin).status_code == 422


def test_audit_log_shows_who_created_whom(client: TestClient, session: Session, clock: ManualClock) -> None:
    make_person(session, clock, unit="110000", roles=["admin"], username="cityadmin")
    admin = login(client, "cityadmin")
    created = client.post("/api/v1/people", json=body(), headers=admin).json()
    client.patch(f"/api/v1/people/{created['id']}", json={"name": "孙丽娜", "password": "New-pass-2026"}, headers=admin)
    r = client.get("/api/v1/audit", params={"object_type": "person", "object_id": created["id"]}, headers=admin)
    assert r.status_code == 200
    entries = r.json()["items"]
    assert [e["action"] for e in entries] == ["person.update", "person.create"]
    update, create = entries
    assert create["actor"].endswith(":cityadmin") and create["after"]["username"] == "sunli"
    assert update["before"]["name"] == "孙丽" and update["after"]["name"] == "孙丽娜"
    assert update["after"]["password"] == "changed"
    assert "New-pass-2026" not in r.text and "Duty-2026-pw" not in r.text


def test_audit_is_for_admins_and_limited_to_their_subtree(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    make_person(session, clock, unit="110105001", roles=["viewer"])
    make_person(session, clock, unit="110106001", roles=["viewer"])
    district_admin = signed_in(client, session, clock, unit="110106", roles=["admin"])
    paths = {e["after"]["unit_code"] for e in client.get("/api/v1/audit", headers=district_admin).json()["items"]}
    assert paths == {"110106001", "110106"}
    viewer = signed_in(client, session, clock, unit="110000", roles=["unit_admin"])
    assert client.get("/api/v1/audit", headers=viewer).status_code == 403


def test_two_active_people_may_not_share_a_mobile_number(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    first = client.post("/api/v1/people", json=body(), headers=headers)
    assert first.status_code == 201, first.text
    before = count_people(session)

    # The same number in another spelling is the same E.164 number.
    r = client.post("/api/v1/people", json=body(username="other", phone="+86 139 1234 5678"), headers=headers)
    assert r.status_code == 409, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["phone"]
    assert count_people(session) == before

    second = client.post("/api/v1/people", json=body(username="second", phone="13912340000"), headers=headers)
    assert second.status_code == 201
    r = client.patch(f"/api/v1/people/{second.json()['id']}", json={"phone": "13912345678"}, headers=headers)
    assert r.status_code == 409 and [e["field"] for e in r.json()["errors"]] == ["phone"]
    assert client.get(f"/api/v1/people/{second.json()['id']}", headers=headers).json()["phone"] == "+8613912340000"

    # Deactivated, the number is free for a successor; re-activating the first would share it again.
    assert (
        client.patch(f"/api/v1/people/{first.json()['id']}", json={"active": False}, headers=headers).status_code == 200
    )
    successor = client.post("/api/v1/people", json=body(username="successor"), headers=headers)
    assert successor.status_code == 201, successor.text
    r = client.patch(f"/api/v1/people/{first.json()['id']}", json={"active": True}, headers=headers)
    assert r.status_code == 409 and [e["field"] for e in r.json()["errors"]] == ["phone"]
    assert client.get(f"/api/v1/people/{first.json()['id']}", headers=headers).json()["active"] is False
    # Keeping one's own number on an unrelated change is fine.
    r = client.patch(f"/api/v1/people/{successor.json()['id']}", json={"name": "孙丽丽"}, headers=headers)
    assert r.status_code == 200
