"""The built-in simulator: off unless DUTYLINE_SIMULATOR=on; when on, pages go through it end to end, its
phone side needs a signed-in admin, and its Twilio credentials are random per installation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from app.auth.models import InstanceSecret
from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from app.notify.channels.twilio_client import make_client
from app.notify.models import OutboxMessage
from app.notify.simulator import credentials
from tests.factories import PASSWORD, make_person
from tests.notify.live import LiveServer
from tests.notify.pages import enqueue_page

# Generous: the machine running the tests may be busy (the default 5 s has timed out under load).
HTTP = httpx.Client(timeout=30)
# What the simulator's auth token used to be, in every installation.
OLD_CONSTANT_TOKEN = "simulator-auth-token"


def _settings(server: LiveServer, database_url: str, **extra: Any) -> Settings:
    options: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "DUTYLINE_SECRET_KEY": "test-secret-key-not-for-production",
        "PUBLIC_BASE_URL": server.url,
        "DUTYLINE_DISPATCH_POLL_SECONDS": 0.05,
    }
    return Settings(**(options | extra))


@dataclass
class Demo:
    url: str
    admin: str
    duty: str
    unit_admin: str


@pytest.fixture
def demo(engine: Engine, clock: ManualClock, database_url: str, session: Session) -> Iterator[Demo]:
    """The app with the simulator on, served live (its dispatcher polling), and people made before it starts."""
    people = [
        make_person(session, clock, unit="110000", roles=["admin"]),
        make_person(session, clock, unit="110000", roles=["duty_officer"]),
        make_person(session, clock, unit="110106", roles=["unit_admin"]),
    ]
    admin, duty, unit_admin = (p.username or "" for p in people)
    server = LiveServer()
    settings = _settings(server, database_url, DUTYLINE_SIMULATOR="on")
    assert settings.simulator_enabled and settings.dispatcher
    server.start(create_app(settings, engine=engine, clock=clock))
    yield Demo(url=server.url, admin=admin, duty=duty, unit_admin=unit_admin)
    server.stop()


def _bearer(url: str, username: str) -> dict[str, str]:
    r = HTTP.post(f"{url}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_simulator_is_off_by_default(engine: Engine, clock: ManualClock, database_url: str) -> None:
    server = LiveServer()
    settings = _settings(server, database_url)
    assert not settings.simulator_enabled
    server.start(create_app(settings, engine=engine, clock=clock))
    try:
        for path in ("/sim/messages", "/sim/stats", "/sim/calls"):
            assert HTTP.get(server.url + path).status_code == 404, path
        assert HTTP.post(server.url + "/sim/reset").status_code == 404
        assert HTTP.patch(server.url + "/sim/config", json={"latency": 1}).status_code == 404
    finally:
        server.stop()


def _inbox(base: str, phone: str, count: int, auth: dict[str, str]) -> list[dict[str, Any]]:
    inbox: list[dict[str, Any]] = []
    for _ in range(250):
        inbox = HTTP.get(f"{base}/sim/messages", params={"to": phone}, headers=auth).json()
        if len(inbox) >= count:
            break
        time.sleep(0.02)
    return inbox


def test_when_on_the_simulator_carries_pages_and_replies_for_an_admin(
    demo: Demo, engine: Engine, clock: ManualClock
) -> None:
    """+86 numbers go by the Alibaba Cloud simulator (through its SDK), others by the Twilio one."""
    auth = _bearer(demo.url, demo.admin)
    page_id = enqueue_page(engine, clock, phone="+8613800000011", incident_id=3, code="D3M0")
    # The running dispatcher picks it up by itself (woken by the commit); +86 goes by Alibaba Cloud.
    inbox = _inbox(demo.url, "+8613800000011", 1, auth)
    assert [(m["provider"], m["body"]) for m in inbox] == [
        (
            "aliyun",
            "【应急值守】[较大（III级）事件·火灾]右安门街道：某医院住院部起火。地址：未报；伤亡：未报。"
            "编号D3M0，请于5分钟内回复1签收",
        )
    ]
    # The reply goes in through Alibaba Cloud's SmsUp push; the confirmation comes back as an SMS.
    r = HTTP.post(f"{demo.url}/sim/messages", json={"from": "+8613800000011", "body": "1"}, headers=auth)
    assert r.json() == {"status": 200, "replies": [], "provider": "aliyun"}
    inbox = _inbox(demo.url, "+8613800000011", 2, auth)
    assert [(m["provider"], m["body"]) for m in inbox[1:]] == [("aliyun", "【应急值守】已签收 D3M0")]
    with Session(engine) as s:
        row = s.get(OutboxMessage, page_id)
        assert row is not None and row.acknowledged_via == "sms" and row.provider == "aliyun"
    # Any other number still goes by Twilio (its simulator), and a reply is answered in TwiML.
    enqueue_page(engine, clock, phone="+12025550123", incident_id=4, code="D3M1")
    assert [m["provider"] for m in _inbox(demo.url, "+12025550123", 1, auth)] == ["twilio"]
    r = HTTP.post(f"{demo.url}/sim/messages", json={"from": "+12025550123", "body": "1"}, headers=auth)
    assert r.json() == {"status": 200, "replies": ["已签收 D3M1"]}


def test_the_phone_side_needs_a_signed_in_admin(demo: Demo, engine: Engine, clock: ManualClock) -> None:
    url = demo.url
    enqueue_page(engine, clock, phone="+8613800000011", incident_id=3, code="D3M1")
    reply = {"from": "+8613800000011", "body": "1"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/sim/messages", {}),
        ("POST", "/sim/messages", {"json": reply}),
        ("GET", "/sim/calls", {}),
        ("POST", "/sim/calls/CA0/digits", {"json": {"digits": "1"}}),
        ("GET", "/sim/stats", {}),
        ("POST", "/sim/reset", {}),
        ("PATCH", "/sim/config", {"json": {"latency": 0}}),
    ]
    others = {name: _bearer(url, name) for name in (demo.duty, demo.unit_admin)}
    for method, path, kwargs in calls:
        assert HTTP.request(method, url + path, **kwargs).status_code == 401, (method, path)
        bad = {"Authorization": "Bearer not-a-token"}
        assert HTTP.request(method, url + path, headers=bad, **kwargs).status_code == 401, (method, path)
        for name, headers in others.items():
            r = HTTP.request(method, url + path, headers=headers, **kwargs)
            assert r.status_code == 403, (method, path, name)
    # The refused reply acknowledged nothing; nobody reset the inbox.
    with Session(engine) as s:
        assert all(row.acknowledged_at is None for row in s.exec(select(OutboxMessage)).all())
    auth = _bearer(url, demo.admin)
    assert HTTP.get(url + "/sim/stats", headers=auth).json()["messages"] >= 0
    assert HTTP.patch(url + "/sim/config", json={"latency": 0}, headers=auth).status_code == 200
    # Where the simulator posts signed replies is not something its config API can change.
    r = HTTP.patch(url + "/sim/config", json={"inbound_url": "http://127.0.0.1:5432/"}, headers=auth)
    assert "inbound_url" not in r.json() or r.json()["inbound_url"].endswith("/twilio/sms/inbound")


def test_the_console_session_works_and_its_writes_need_the_csrf_token(demo: Demo) -> None:
    with httpx.Client(base_url=demo.url, timeout=30) as browser:
        page = browser.get("/console/login")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        r = browser.post("/console/login", data={"username": demo.admin, "password": PASSWORD, "csrf": csrf})
        assert r.status_code in (200, 303), r.text
        assert browser.get("/sim/messages").status_code == 200
        reply = {"from": "+8613800000011", "body": "1"}
        assert browser.post("/sim/messages", json=reply).status_code == 403  # no X-CSRF-Token: a forged post
        board = browser.get("/console/board")
        token = board.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        assert browser.post("/sim/messages", json=reply, headers={"X-CSRF-Token": token}).status_code == 200


def test_credentials_are_random_per_installation_and_twilio_checks_them(demo: Demo, engine: Engine) -> None:
    url = demo.url
    with Session(engine) as s:
        row = s.get(InstanceSecret, credentials.SECRET_NAME)
        assert row is not None  # made on first start, kept with the other instance secrets
        creds = credentials.twilio(row.value)
    assert creds.auth_token != OLD_CONSTANT_TOKEN and creds.account_sid != "AC" + "5" * 32
    assert creds.account_sid.startswith("AC") and len(creds.account_sid) == 34
    assert credentials.twilio("another installation") != creds

    # The simulator's Twilio API, called by the real twilio library, accepts only these credentials.
    good = make_client(creds.account_sid, creds.auth_token, base_url=f"{url}/sim")
    assert good.messages.list(to="+8613800000011", limit=5) == []
    for sid, token in ((creds.account_sid, OLD_CONSTANT_TOKEN), ("AC" + "5" * 32, OLD_CONSTANT_TOKEN)):
        with pytest.raises(TwilioRestException) as refused:
            make_client(sid, token, base_url=f"{url}/sim").messages.create(
                to="+8613800000011", from_="+15005550006", body="forged"
            )
        assert refused.value.status == 401

    # A reply forged with the old constant token is refused by our callback; the installation's token passes.
    inbound = f"{url}/twilio/sms/inbound"
    params = {"From": "+8613800000011", "Body": "1", "MessageSid": "SMforged", "AccountSid": creds.account_sid}
    forged = RequestValidator(OLD_CONSTANT_TOKEN).compute_signature(inbound, params)
    assert HTTP.post(inbound, data=params, headers={"X-Twilio-Signature": forged}).status_code == 403
    genuine = RequestValidator(creds.auth_token).compute_signature(inbound, params)
    assert HTTP.post(inbound, data=params, headers={"X-Twilio-Signature": genuine}).status_code == 200


def test_the_standalone_simulator_controls_need_its_control_token() -> None:
    from app.notify.simulator import SimulatorConfig, standalone

    config = SimulatorConfig()
    app, _ = standalone(config)
    server = LiveServer().start(app)
    try:
        assert HTTP.get(f"{server.url}/sim/messages").status_code == 401
        assert HTTP.post(f"{server.url}/sim/reset", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = {"Authorization": f"Bearer {config.control_token}"}
        assert HTTP.get(f"{server.url}/sim/messages", headers=ok).json() == []
        assert SimulatorConfig().auth_token != config.auth_token  # random, not a constant
    finally:
        server.stop()
