"""Group robots: the API, posts that the robots' simulator accepts (DingTalk's signature verified), bundling."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app import logs, netguard
from app.clock import ManualClock
from app.notify import robots
from app.notify.channels import ChannelMessage
from app.notify.channels.robot import RobotChannel, dingtalk_sign
from app.notify.models import OutboxMessage, UnitRobot
from app.notify.simulator.robots import RobotSimulator, standalone
from tests.factories import PASSWORD, make_person, signed_in
from tests.incidents.helpers import fire, key_for, staff_chain, tick
from tests.notify.conftest import Service
from tests.notify.live import LiveServer

STREET = "110106001"
PUBLIC = "93.184.216.34"  # what a public robot host resolves to in these tests
# The machine is shared and busy: an intake may take seconds.
post = partial(httpx.post, timeout=30.0)
get = partial(httpx.get, timeout=30.0)


@pytest.fixture(scope="session")
def _robot_server() -> Iterator[tuple[str, RobotSimulator]]:
    app, sim = standalone()
    server = LiveServer().start(app)
    yield f"{server.url}/sim", sim
    server.stop()


@pytest.fixture
def robot_sim(_robot_server: tuple[str, RobotSimulator], clock: ManualClock) -> Iterator[tuple[str, RobotSimulator]]:
    url, sim = _robot_server
    sim.reset()
    sim.now = clock.now  # the robots' servers keep the test's time (DingTalk checks the signed timestamp)
    yield url, sim
    sim.reset()


@pytest.fixture
def service_options() -> dict[str, Any]:
    # These tests run the tick themselves: a background one commits every second, and a test's own read-then-write
    # (make_person hashes a password in between) then fails on SQLite with "database is locked".
    return {"DUTYLINE_WEBHOOK_ALLOW_PRIVATE": True, "DUTYLINE_SCHEDULER": False}


def _make_robot(url: str, kind: str) -> dict[str, Any]:
    r = post(f"{url}/robots", json={"kind": kind})
    r.raise_for_status()
    made: dict[str, Any] = r.json()
    return made


# ---- the API ----


def test_unit_admins_register_robots_within_their_subtree_and_never_see_the_secret(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    local = signed_in(client, session, clock, unit="110106", roles=["unit_admin"])
    other = signed_in(client, session, clock, unit="110105", roles=["unit_admin"])
    officer = signed_in(client, session, clock, unit=STREET, roles=["duty_officer"])
    body = {
        "kind": "dingtalk",
        "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789",
        "secret": "SECthis-is-the-signing-secret",
    }
    assert client.post(f"/api/v1/units/{STREET}/robots", json=body, headers=other).status_code == 403
    assert client.post(f"/api/v1/units/{STREET}/robots", json=body, headers=officer).status_code == 403
    r = client.post(f"/api/v1/units/{STREET}/robots", json=body, headers=local)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["kind"] == "dingtalk" and created["signed"] is True and "secret" not in created
    assert created["webhook_url"] == "https://oapi.dingtalk.com/robot/send?access_token=abcd****"
    wecom = {"kind": "wecom", "webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-123456789"}
    assert client.post(f"/api/v1/units/{STREET}/robots", json=wecom, headers=local).status_code == 201

    listed = client.get(f"/api/v1/units/{STREET}/robots", headers=local).json()
    assert [x["kind"] for x in listed["items"]] == ["dingtalk", "wecom"]
    assert client.get(f"/api/v1/units/{STREET}/robots", headers=other).status_code == 403
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    audit = client.get("/api/v1/audit?object_type=unit_robot", headers=admin).text
    assert "signing-secret" not in audit and "0123456789" not in audit and "k-123456789" not in audit

    assert client.delete(f"/api/v1/units/110105001/robots/{created['id']}", headers=admin).status_code == 404
    assert client.delete(f"/api/v1/units/{STREET}/robots/{created['id']}", headers=other).status_code == 403
    assert client.delete(f"/api/v1/units/{STREET}/robots/{created['id']}", headers=local).status_code == 204
    assert [x["kind"] for x in client.get(f"/api/v1/units/{STREET}/robots", headers=local).json()["items"]] == ["wecom"]


def test_bad_robots_are_422_naming_the_field_and_nothing_is_written(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    ding = "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    for body, field in [
        ({"kind": "dingtalk", "webhook_url": ding}, "secret"),
        ({"kind": "wecom", "webhook_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1", "secret": "SEC12345"}, "secret"),  # noqa: E501
        ({"kind": "dingtalk", "webhook_url": "https://oapi.dingtalk.com/robot/send", "secret": "SEC12345"}, "webhook_url"),  # noqa: E501
        ({"kind": "feishu", "webhook_url": ding, "secret": "SEC12345"}, "kind"),
        ({"kind": "dingtalk", "webhook_url": "ftp://x/?access_token=1", "secret": "SEC12345"}, "webhook_url"),
        ({"kind": "dingtalk", "webhook_url": "http://10.1.2.3/robot/send?access_token=1", "secret": "SEC12345"}, "webhook_url"),  # noqa: E501
        ({"kind": "dingtalk", "webhook_url": "http://127.0.0.1:9/robot/send?access_token=1", "secret": "SEC12345"}, "webhook_url"),  # noqa: E501
    ]:  # fmt: skip
        r = client.post(f"/api/v1/units/{STREET}/robots", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert field in json.dumps(r.json()["errors"]), r.text
    assert client.post("/api/v1/units/999999/robots", json={}, headers=admin).status_code in (404, 422)
    session.commit()
    assert session.exec(select(UnitRobot)).all() == []


# ---- posting, through the real stack ----


def _register(service: Service, headers: dict[str, str], robot: dict[str, Any], unit: str = STREET) -> int:
    body = {"kind": robot["kind"], "webhook_url": robot["webhook_url"], "secret": robot["secret"]}
    r = post(f"{service.url}/api/v1/units/{unit}/robots", json=body, headers=headers)
    assert r.status_code == 201, r.text
    robot_id: int = r.json()["id"]
    return robot_id


def _token(service: Service, username: str) -> dict[str, str]:
    r = post(f"{service.url}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_page_posts_to_the_units_dingtalk_group_signed_and_mentioning_who_is_on_duty(
    service: Service, session: Session, clock: ManualClock, engine: Engine, robot_sim: tuple[str, RobotSimulator]
) -> None:
    url, sim = robot_sim
    staff = staff_chain(session, clock)
    admin = signed_in_live(service, session, clock)
    robot_id = _register(service, admin, _make_robot(url, "dingtalk"))
    key = key_for(session, clock, "119")

    r = post(f"{service.url}/api/v1/incidents", json=fire(), headers=key)
    assert r.status_code == 201, r.text
    inc = r.json()
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    [received] = sim.inbox("dingtalk")
    officer = staff("street", "duty_officer")
    assert received["verified"] is True  # the simulator checked timestamp + sign against the robot's secret
    assert received["mentions"] == [officer.phone[3:]]
    assert inc["code"] in received["content"] and f"@{officer.phone[3:]}" in received["content"]
    assert "回复1签收" not in received["content"] and officer.name in received["content"]

    # The post is on the incident's record, as a robot row that names the robot, not its URL.
    notes = get(f"{service.url}/api/v1/incidents/{inc['id']}/notifications", headers=key).json()["items"]
    [row] = [n for n in notes if n["channel"] == "robot"]
    assert row["to"] == f"robot:{robot_id}" and row["status"] == "delivered"
    timeline = get(f"{service.url}/api/v1/incidents/{inc['id']}", headers=key).json()["timeline"]
    assert any(e["kind"] == "page" and "群机器人" in e["message"] for e in timeline)

    # Five minutes later the tick pages the leader and reminds the officer: one message, both mentioned.
    clock.advance(minutes=5)
    assert tick(engine, clock).steps >= 1
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    posts = sim.inbox("dingtalk")
    assert len(posts) == 2 and posts[1]["verified"]
    assert set(posts[1]["mentions"]) == {officer.phone[3:], staff("street", "leader").phone[3:]}
    assert "2条通知" in posts[1]["content"]


def test_a_wrong_dingtalk_signature_is_refused_with_310000(
    robot_sim: tuple[str, RobotSimulator], clock: ManualClock
) -> None:
    url, sim = robot_sim
    robot = _make_robot(url, "dingtalk")
    now_ms = int(clock.now().timestamp() * 1000)
    body = {"msgtype": "text", "text": {"content": "测试"}}
    good = f"{robot['webhook_url']}&timestamp={now_ms}&sign={dingtalk_sign(robot['secret'], now_ms)}"
    bad = f"{robot['webhook_url']}&timestamp={now_ms}&sign={dingtalk_sign('SECwrong', now_ms)}"
    stale_ms = now_ms - 2 * 3600 * 1000
    stale = f"{robot['webhook_url']}&timestamp={stale_ms}&sign={dingtalk_sign(robot['secret'], stale_ms)}"
    assert post(bad, json=body).json()["errcode"] == 310000
    assert post(stale, json=body).json()["errcode"] == 310000
    assert post(good, json=body).json() == {"errcode": 0, "errmsg": "ok"}
    assert len(sim.inbox()) == 1


def signed_in_live(service: Service, session: Session, clock: ManualClock) -> dict[str, str]:
    person = make_person(session, clock, unit="110000", roles=["admin"])
    assert person.username is not None
    return _token(service, person.username)


def test_pages_in_a_storm_are_bundled_under_twenty_messages_a_minute(
    service: Service, session: Session, clock: ManualClock, engine: Engine, robot_sim: tuple[str, RobotSimulator]
) -> None:
    url, sim = robot_sim
    staff_chain(session, clock)
    admin = signed_in_live(service, session, clock)
    _register(service, admin, _make_robot(url, "wecom"))
    _register(service, admin, _make_robot(url, "dingtalk"))
    key = key_for(session, clock, "119")
    codes = []
    # 60 incidents in the street, one a second: 60 pages for each robot within a minute.
    for n in range(60):
        report = fire(external_id=f"119-{n}", title=f"第{n}处起火", location={"lat": 39.8 + n / 100, "lon": 116.3})
        r = post(f"{service.url}/api/v1/incidents", json=report, headers=key)
        assert r.status_code == 201, r.text
        codes.append(r.json()["code"])
        tick(engine, clock)  # intake records, the tick pages
        service.dispatcher.drain()
        clock.advance(seconds=1)
    clock.advance(seconds=5)
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()

    assert sim.refused == []  # never over the limit: no 130101 / 45009
    for kind in ("wecom", "dingtalk"):
        posts = sim.inbox(kind)
        assert 2 <= len(posts) <= 20, len(posts)
        text = "\n".join(p["content"] for p in posts)
        assert all(code in text for code in codes)  # every page reached the group
        assert max(p["content"].count("编号") for p in posts) >= 3  # several pages became one message
    session.commit()
    rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.channel) == "robot")).all()
    assert len(rows) == 120 and {r.status for r in rows} == {"delivered"}


def test_the_simulator_refuses_the_twenty_first_post_in_a_minute(
    robot_sim: tuple[str, RobotSimulator], clock: ManualClock
) -> None:
    url, sim = robot_sim
    robot = _make_robot(url, "wecom")
    answers = [
        post(robot["webhook_url"], json={"msgtype": "text", "text": {"content": str(n)}}).json() for n in range(21)
    ]
    assert answers[19] == {"errcode": 0, "errmsg": "ok"} and answers[20]["errcode"] == 45009
    clock.advance(seconds=61)
    assert post(robot["webhook_url"], json={"msgtype": "text", "text": {"content": "x"}}).json()["errcode"] == 0
    assert len(sim.inbox("wecom")) == 21 and [r["reason"] for r in sim.refused] == ["too many"]


def test_a_bundle_stays_within_the_robots_size_limit() -> None:
    lines = [
        f"【III级火灾】右安门街道:某医院住院部起火,第{n}条。编号F3K{n}。请值班员张三签收 @13900000000"
        for n in range(80)
    ]
    text = robots.content("wecom", lines)
    assert len(text.encode()) <= 2048 and "另有" in text and text.startswith("【应急值守】80条通知")
    assert robots.content("dingtalk", lines[:1]) == "【应急值守】\n" + lines[0]


def test_robot_urls_stay_out_of_the_logs(clock: ManualClock) -> None:
    """httpx logs each request's URL at INFO; a robot's carries its key or token and signature."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("httpx").level
    records: list[logging.LogRecord] = []
    try:
        logs.configure("INFO", "text")
        root.addHandler(ListHandler(records))
        sent: list[str] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(str(request.url))
            return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})

        channel = RobotChannel(
            clock=clock, http=httpx.Client(transport=httpx.MockTransport(answer)), resolver=lambda _h, _p: [PUBLIC]
        )
        url = "https://oapi.dingtalk.com/robot/send?access_token=tok-9f8e7d"
        message = ChannelMessage(
            id=1, channel="robot", to=url, body="测试", template="robot_post",
            params={"kind": "dingtalk", "mobiles": []}, attempts=1, secret="SECsecret-value",
        )  # fmt: skip
        assert channel.send(message).ok
    finally:
        root.handlers[:], level, httpx_level = saved
        root.setLevel(level)
        logging.getLogger("httpx").setLevel(httpx_level)
    logged = "\n".join(r.getMessage() for r in records)
    assert "tok-9f8e7d" in sent[0] and "&sign=" in sent[0]
    assert "tok-9f8e7d" not in logged and "sign=" not in logged


def _robot_message(url: str) -> ChannelMessage:
    return ChannelMessage(
        id=1, channel="robot", to=url, body="测试", template="robot_post",
        params={"kind": "wecom", "mobiles": []}, attempts=1,
    )  # fmt: skip


def test_a_robot_name_re_pointed_inside_is_refused_at_send_time_and_never_contacted(
    clock: ManualClock, robot_sim: tuple[str, RobotSimulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, sim = robot_sim
    robot = _make_robot(url, "wecom")
    # Registered while its name resolved to a public address; by the time a page goes, it resolves to loopback.
    named = robot["webhook_url"].replace("127.0.0.1", "robots.example.net")
    refused = RobotChannel(clock=clock, timeout=30, resolver=lambda _h, _p: [PUBLIC, "127.0.0.1"]).send(
        _robot_message(named)
    )
    assert not refused.ok and refused.error_class == "permanent"
    assert refused.error is not None and refused.error.startswith("refused target") and "127.0.0.1" in refused.error
    assert sim.inbox() == [] and sim.refused == []

    # The system resolver does not know this name: the only way to reach the robot is the checked address
    # (loopback passes the check only here).
    original = netguard.refusal
    monkeypatch.setattr(netguard, "refusal", lambda a: None if str(a) == "127.0.0.1" else original(a))
    sent = RobotChannel(clock=clock, timeout=30, resolver=lambda _h, _p: ["127.0.0.1"]).send(_robot_message(named))
    assert sent.ok, sent.error
    assert [m["content"] for m in sim.inbox()] == ["测试"]


class ListHandler(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
