"""The console's session cookie and CSRF checks, over plain HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.clock import ManualClock
from app.roster.models import CheckIn
from tests.factories import make_person
from tests.roster import helpers as roster
from tests.web.helpers import console_sign_in, login_token

STREET = "110106001"


def check_ins(session: Session) -> list[CheckIn]:
    session.rollback()  # a fresh snapshot: the server committed in its own connection
    return list(session.exec(select(CheckIn)).all())


def test_pages_need_a_session(client: TestClient) -> None:
    r = client.get("/console/board", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/board"
    # The page asked for comes back after signing in with its query (here a report's unit and period).
    asked = "/console/reports?unit=110106&period=month"
    r = client.get(asked, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=" + quote(asked)
    login = client.get(r.headers["location"])
    assert f'value="{asked}"' in login.text.replace("&amp;", "&")
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console"


def test_sign_in_sets_a_signed_http_only_lax_cookie(client: TestClient, session: Session, clock: ManualClock) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"], name="陈静")
    assert person.username is not None
    token = login_token(client)
    r = client.post(
        "/console/login",
        data={"username": person.username, "password": "Correct-horse-9", "csrf": token, "next": "/console/rosters"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/rosters"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("dl_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    board = client.get("/console/board")
    assert board.status_code == 200 and "陈静" in board.text
    assert "default-src 'self'" in board.headers["content-security-policy"]


def test_wrong_password_shows_an_error_and_sets_no_session(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    token = login_token(client)
    r = client.post(
        "/console/login",
        data={"username": person.username, "password": "wrong-password", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 401
    assert "用户名或密码错误" in r.text
    assert not any(h.startswith("dl_session=") for h in r.headers.get_list("set-cookie"))
    assert client.get("/console/board", follow_redirects=False).status_code == 303


def test_sign_in_is_throttled_like_the_api(client: TestClient, session: Session, clock: ManualClock) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    statuses = []
    for _ in range(6):
        token = login_token(client)
        r = client.post("/console/login", data={"username": person.username, "password": "nope", "csrf": token})
        statuses.append(r.status_code)
    assert statuses == [401] * 5 + [429]
    # throttled before the password is looked at: the right one is refused too
    token = login_token(client)
    r = client.post(
        "/console/login",
        data={"username": person.username, "password": "Correct-horse-9", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 429 and "失败次数过多" in r.text


def test_sign_in_form_needs_its_token(client: TestClient, session: Session, clock: ManualClock) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    login_token(client)
    r = client.post(
        "/console/login", data={"username": person.username, "password": "Correct-horse-9"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert not any(h.startswith("dl_session=") for h in r.headers.get_list("set-cookie"))


def _on_duty(session: Session, clock: ManualClock, person_unit: str = STREET) -> str:
    person = make_person(session, clock, unit=person_unit, roles=["duty_officer"])
    now = clock.now()
    roster.override(
        session,
        clock,
        unit=person_unit,
        role="duty_officer",
        person=person,
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=5),
    )
    assert person.username is not None
    return person.username


def test_a_post_without_the_csrf_token_is_refused(client: TestClient, session: Session, clock: ManualClock) -> None:
    username = _on_duty(session, clock)
    csrf = console_sign_in(client, username)
    assert client.post("/console/check-in", data={}).status_code == 403
    assert client.post("/console/check-in", data={"csrf": csrf[:-2] + "xx"}).status_code == 403
    assert check_ins(session) == []
    r = client.post("/console/check-in", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "msg=checked_in" in r.headers["location"]
    assert len(check_ins(session)) == 1


def test_csrf_token_is_tied_to_the_session(client: TestClient, session: Session, clock: ManualClock) -> None:
    first = _on_duty(session, clock)
    other = make_person(session, clock, unit=STREET, roles=["viewer"])
    assert other.username is not None
    stolen = console_sign_in(client, other.username)
    console_sign_in(client, first)  # a new session: the old token means nothing now
    assert client.post("/console/check-in", data={"csrf": stolen}).status_code == 403


def test_tampered_or_expired_session_signs_out(client: TestClient, session: Session, clock: ManualClock) -> None:
    username = _on_duty(session, clock)
    console_sign_in(client, username)
    value = client.cookies["dl_session"]
    client.cookies.set("dl_session", value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
    assert client.get("/console/board", follow_redirects=False).status_code == 303
    client.cookies.set("dl_session", value)
    assert client.get("/console/board", follow_redirects=False).status_code == 200
    clock.advance(hours=12, seconds=1)
    assert client.get("/console/board", follow_redirects=False).status_code == 303


def test_logout_needs_the_token_and_clears_the_cookie(client: TestClient, session: Session, clock: ManualClock) -> None:
    username = _on_duty(session, clock)
    csrf = console_sign_in(client, username)
    assert client.post("/console/logout", data={}).status_code == 403
    r = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/console/board", follow_redirects=False).status_code == 303


def test_deactivated_person_is_signed_out(client: TestClient, session: Session, clock: ManualClock) -> None:
    username = _on_duty(session, clock)
    console_sign_in(client, username)
    from app.org.models import Person

    person = session.exec(select(Person).where(Person.username == username)).one()
    person.active = False
    session.add(person)
    session.commit()
    assert client.get("/console/board", follow_redirects=False).status_code == 303


def test_next_cannot_leave_the_console(client: TestClient, session: Session, clock: ManualClock) -> None:
    username = _on_duty(session, clock)
    token = login_token(client)
    r = client.post(
        "/console/login",
        data={"username": username, "password": "Correct-horse-9", "csrf": token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/console/board"


def test_times_are_shown_in_the_configured_zone(client: TestClient, session: Session, clock: ManualClock) -> None:
    username = _on_duty(session, clock)
    console_sign_in(client, username)
    assert clock.now() == datetime.fromisoformat("2026-04-18T04:00:00+00:00")
    assert "2026-04-18 12:00" in client.get("/console/board").text
