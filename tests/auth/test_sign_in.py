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
