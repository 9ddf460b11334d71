from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.clock import ManualClock
from tests.factories import PASSWORD, login, make_person


def test_token_and_me(client: TestClient, session: Session, clock: ManualClock) -> None:
    make_person(session, clock, unit="110106", roles=["duty_officer", "leader"], username="zhang")
    r = client.post("/api/v1/auth/token", data={"username": "zhang", "password": PASSWORD})
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer" and r.json()["expires_in"] == 1800
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "zhang" and me.json()["unit_code"] == "110106"
    assert "incidents:ack" in me.json()["permissions"] and "people:write" not in me.json()["permissions"]


def test_wrong_password_and_unknown_user_get_the_same_401(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    make_person(session, clock, unit="110106", roles=["viewer"], username="li")
    wrong = client.post("/api/v1/auth/token", data={"username": "li", "password": "Wrong-pass-1"})
    unknown = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "Wrong-pass-1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_repeated_failures_are_throttled_even_with_the_right_password(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    make_person(session, clock, unit="110106", roles=["viewer"], username="wang")
    for _ in range(5):
        assert (
            client.post("/api/v1/auth/token", data={"username": "wang", "password": "nope-nope-1"}).status_code == 401
        )
    r = client.post("/api/v1/auth/token", data={"username": "wang", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    clock.advance(minutes=16)
    login(client, "wang")


def test_tokens_expire_by_the_injected_clock(client: TestClient, session: Session, clock: ManualClock) -> None:
    make_person(session, clock, unit="110106", roles=["viewer"], username="zhao")
    headers = login(client, "zhao")
    clock.advance(minutes=29)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clock.advance(minutes=2)
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_forged_token_is_refused(client: TestClient, session: Session, clock: ManualClock) -> None:
    import jwt

    person = make_person(session, clock, unit="110000", roles=["admin"])
    forged = jwt.encode(
        {"sub": str(person.id), "exp": 9999999999, "typ": "access"},
        "guessed-key-of-32-bytes-or-more-0000",
        algorithm="HS256",
    )
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401


def _fail(client: TestClient, username: str, times: int) -> None:
    for _ in range(times):
        r = client.post("/api/v1/auth/token", data={"username": username, "password": "nope-nope-1"})
        assert r.status_code in (401, 429)


def test_an_admin_unlocks_a_locked_out_username_and_it_is_audited(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    from tests.factories import signed_in

    wang = make_person(session, clock, unit="110106001", roles=["duty_officer"], username="wang2")
    admin = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    other_district = signed_in(client, session, clock, unit="110105", roles=["unit_admin"])
    viewer = signed_in(client, session, clock, unit="110106", roles=["viewer"])
    _fail(client, "wang2", 5)  # anyone who knows the username can do this
    assert client.post("/api/v1/auth/token", data={"username": "wang2", "password": PASSWORD}).status_code == 429

    assert client.post(f"/api/v1/people/{wang.id}/unlock", headers=viewer).status_code == 403
    assert client.post(f"/api/v1/people/{wang.id}/unlock", headers=other_district).status_code == 404
    assert client.post("/api/v1/people/4294967296/unlock", headers=admin).status_code == 422
    r = client.post(f"/api/v1/people/{wang.id}/unlock", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"person_id": wang.id, "username": "wang2", "failures_cleared": 5}
    login(client, "wang2")

    city = signed_in(client, session, clock, unit="110000", roles=["admin"])
    audit = client.get("/api/v1/audit", params={"action": "person.unlock"}, headers=city).json()["items"]
    assert len(audit) == 1 and audit[0]["object_id"] == str(wang.id)
    assert audit[0]["after"] == {"username": "wang2", "failures_cleared": 5}


def test_unlocking_a_username_keeps_the_address_throttle(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    from tests.factories import signed_in

    target = make_person(session, clock, unit="110106", roles=["viewer"], username="target")
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    # One address fails 4 × 5 times over several usernames: the address itself is throttled.
    for name in ("target", "x1", "x2", "x3"):
        _fail(client, name, 5)
    assert client.post(f"/api/v1/people/{target.id}/unlock", headers=admin).status_code == 200
    r = client.post("/api/v1/auth/token", data={"username": "target", "password": PASSWORD})
    assert r.status_code == 429  # the username is free again, but not for the address that guessed
    clock.advance(minutes=16)
    login(client, "target")


def test_unlock_user_from_the_command_line(
    database_url: str, client: TestClient, session: Session, clock: ManualClock
) -> None:
    from tests.test_cli import run

    make_person(session, clock, unit="110106", roles=["viewer"], username="zhou")
    _fail(client, "zhou", 6)
    r = run(database_url, "unlock-user", "zhou")
    assert r.returncode == 0, r.stderr
    assert "zhou is unlocked" in r.stdout
    login(client, "zhou")
    r = run(database_url, "unlock-user", "nobody-here")
    assert r.returncode == 1 and "nobody-here" in r.stderr
