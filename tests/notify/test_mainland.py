"""Delivery in mainland China through the providers' real SDKs (Alibaba Cloud SMS and voice, Tencent Cloud SMS)
talking over HTTP to the simulator, which checks each SDK's request signature and pushes receipts and replies
to our callbacks as the providers do (PRODUCT.md §8)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.auth.principal import Principal
from app.clock import ManualClock
from app.db import transaction
from app.escalation import jobs
from app.notify.channels import Channel, ChannelMessage, ProviderResult
from app.notify.dispatcher import Dispatcher
from app.notify.models import HeldReceipt, OutboxMessage
from app.rollcall import service as rollcall_service
from app.rollcall.schemas import RollCallCreate
from app.roster.models import DutyRole
from app.runtime.notify import callback_urls
from tests.factories import PASSWORD, make_person
from tests.incidents.helpers import Staff, fire, key_for, staff_chain
from tests.notify.conftest import SIM_DEFAULTS, Phone, Service, Simulator
from tests.notify.pages import enqueue_page

TOKEN = "test-callback-token-0123456789abcdef"
pytestmark = pytest.mark.usefixtures("mainland")


@pytest.fixture
def staff(session: Session, clock: ManualClock) -> Staff:
    """The chain and an agency key, made before the service (and its scheduler, writing on SQLite) starts."""
    people = staff_chain(session, clock)
    session.commit()
    return people


@pytest.fixture
def key(session: Session, clock: ManualClock, staff: Staff) -> dict[str, str]:  # noqa: ARG001 (order: staff first)
    return key_for(session, clock, "119")


@pytest.fixture
def service_options(_simulator_server: tuple[str, Any], key: dict[str, str]) -> dict[str, Any]:  # noqa: ARG001
    root = _simulator_server[0].removesuffix("/sim")  # the providers' APIs are at the simulator's root path
    return {
        "DUTYLINE_SMS_ROUTES": "+86=aliyun,tencent;*=twilio",
        "DUTYLINE_VOICE_ROUTES": "+86=aliyun;*=twilio",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": SIM_DEFAULTS.aliyun_access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SIM_DEFAULTS.aliyun_access_key_secret,
        "ALIYUN_SMS_SIGN_NAME": "应急值守",
        "ALIYUN_VOICE_SHOW_NUMBER": "01066666110",
        "ALIYUN_SMS_ENDPOINT": root,
        "ALIYUN_VOICE_ENDPOINT": root,
        "TENCENTCLOUD_SECRET_ID": SIM_DEFAULTS.tencent_secret_id,
        "TENCENTCLOUD_SECRET_KEY": SIM_DEFAULTS.tencent_secret_key,
        "TENCENT_SMS_SDK_APP_ID": SIM_DEFAULTS.tencent_sdk_app_id,
        "TENCENT_SMS_SIGN_NAME": "应急值守",
        "TENCENT_SMS_ENDPOINT": root,
        "TENCENT_SMS_PULL_STATUS": True,
        "DUTYLINE_CALLBACK_TOKEN": TOKEN,
        "DUTYLINE_PROVIDER_TIMEOUT_SECONDS": 1.0,
    }


@pytest.fixture
def mainland(service: Service, simulator: Simulator) -> None:
    simulator.configure(**callback_urls(service.url, TOKEN))


def _inbox(simulator: Simulator, number: str) -> list[dict[str, Any]]:
    return list(simulator.http.get("/messages", params={"to": number}).json())


def _incident(service: Service, key: dict[str, str], **overrides: Any) -> dict[str, Any]:
    with httpx.Client(base_url=service.url, headers=key, timeout=10) as api:
        inc: dict[str, Any] = api.post("/api/v1/incidents", json=fire(**overrides)).json()
    return inc | {"key": key}


def _api(service: Service, inc: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers=inc["key"], timeout=10)


def test_a_page_goes_by_alibaba_its_receipt_delivers_it_and_reply_1_acknowledges(
    service: Service,
    simulator: Simulator,
    staff: Staff,
    key: dict[str, str],
    phone: Callable[[str], Phone],
) -> None:
    inc = _incident(service, key)
    street = phone(staff("street", "duty_officer").phone)
    street.expect_sms("【应急值守】", "IV级", inc["code"], "回复1签收")
    phone(staff("district", "duty_officer").phone).expect_sms("IV级", inc["code"])
    simulator.settle()
    with _api(service, inc) as api:
        rows = api.get(f"/api/v1/incidents/{inc['id']}/notifications").json()["items"]
        street_row = next(r for r in rows if r["to"] == staff("street", "duty_officer").phone)
        # The SmsReport push found the row by its BizId and delivered it.
        assert street_row["provider"] == "aliyun" and street_row["status"] == "delivered"
        assert street_row["provider_id"] == _inbox(simulator, street_row["to"])[0]["sid"]
        # The reply comes in through Alibaba Cloud's SmsUp push; the confirmation goes out as an SMS.
        street.reply("1").expect_sms("【应急值守】已签收", inc["code"])
        tiers = {t["tier"]: t for t in api.get(f"/api/v1/incidents/{inc['id']}").json()["tiers"]}
        assert tiers["street"]["acknowledged_by"]["id"] == staff("street", "duty_officer").id
        assert tiers["district"]["acknowledged_at"] is None
    assert {m["provider"] for m in simulator.state.messages} == {"aliyun"}
    assert simulator.state.duplicates() == {}
    assert simulator.state.injected["aliyun_rejected_signature"] == 0


def test_a_leader_acknowledges_an_alibaba_voice_call_by_pressing_1(
    service: Service,
    simulator: Simulator,
    session: Session,
    staff: Staff,
    key: dict[str, str],
    phone: Callable[[str], Phone],
) -> None:
    deaths = {"deaths": 12, "injuries": 0, "trapped": 0, "missing": 0}
    inc = _incident(service, key, casualties=deaths)
    assert inc["severity"] == "II"
    for tier in ("street", "district", "city"):
        phone(staff(tier, "duty_officer").phone).expect_sms("II级", inc["code"])
        phone(staff(tier, "leader").phone).expect_sms("II级", inc["code"]).expect_call(
            "重大（二级）", " ".join(inc["code"])
        )
    calls = simulator.http.get("/calls", params={"to": staff("city", "leader").phone}).json()
    assert [c["provider"] for c in calls] == ["aliyun"] and calls[0]["extra"]["action"] == "IvrCall"
    # The key goes back in the call's VoiceReport push (`dtmf`), the way Alibaba Cloud reports it.
    phone(staff("city", "leader").phone).press("1", "已签收")
    with _api(service, inc) as api:
        tiers = {t["tier"]: t for t in api.get(f"/api/v1/incidents/{inc['id']}").json()["tiers"]}
        assert tiers["city"]["acknowledged_by"]["id"] == staff("city", "leader").id
        assert tiers["district"]["acknowledged_at"] is None
    session.commit()
    call = session.exec(select(OutboxMessage).where(OutboxMessage.provider_id == calls[0]["sid"])).one()
    assert call.acknowledged_via == "voice" and call.status == "delivered" and call.provider == "aliyun"


def test_alibaba_rate_limited_fails_over_to_tencent_on_the_timeline(
    service: Service,
    simulator: Simulator,
    staff: Staff,
    key: dict[str, str],
    phone: Callable[[str], Phone],
) -> None:
    r = simulator.http.patch("/config", json={"faults": {"aliyun": "rate_limited"}})
    assert r.status_code == 200 and r.json()["faults"] == {"aliyun": "rate_limited"}
    inc = _incident(service, key)
    street = phone(staff("street", "duty_officer").phone)
    street.expect_sms("IV级", inc["code"])
    phone(staff("district", "duty_officer").phone).expect_sms("IV级", inc["code"])
    simulator.settle()
    assert {m["provider"] for m in simulator.state.messages} == {"tencent"}
    with _api(service, inc) as api:
        rows = api.get(f"/api/v1/incidents/{inc['id']}/notifications").json()["items"]
        assert {(r["provider"], r["status"]) for r in rows} == {("tencent", "delivered")}
        timeline = api.get(f"/api/v1/incidents/{inc['id']}").json()["timeline"]
        failovers = [e for e in timeline if e["kind"] == "failover"]
        assert len(failovers) == 2
        assert all("阿里云" in e["message"] and "rate_limited" in e["message"] and "腾讯云" in e["message"]
                   for e in failovers)  # fmt: skip
        # A reply to Tencent's SMS comes in by Tencent's reply push and acknowledges the same way.
        street.reply("1").expect_sms("已签收", inc["code"])
        tiers = {t["tier"]: t for t in api.get(f"/api/v1/incidents/{inc['id']}").json()["tiers"]}
        assert tiers["street"]["acknowledged_by"]["id"] == staff("street", "duty_officer").id
    assert simulator.state.duplicates() == {}
    assert simulator.state.injected["aliyun_rate_limited"] >= 2


class RecordedLate:
    """The service's own SMS channel (the real SDKs, to the simulator), whose answer reaches the dispatcher only
    once the provider's report has been handled: the order a fast carrier and a slow record produce."""

    def __init__(self, inner: Channel, engine: Engine) -> None:
        self.inner, self.engine = inner, engine

    def send(self, message: ChannelMessage) -> ProviderResult:
        result = self.inner.send(message)
        deadline = time.monotonic() + 15  # real time: the simulator's push is on its way (report_delay)
        while time.monotonic() < deadline:
            with Session(self.engine) as s:
                if s.exec(select(HeldReceipt)).first() is not None:
                    break
            time.sleep(0.02)
        return result


def test_a_tencent_report_that_comes_before_the_send_is_recorded_is_held_then_applied(
    service: Service, simulator: Simulator, engine: Engine, clock: ManualClock, staff: Staff
) -> None:
    simulator.http.patch("/config", json={"faults": {"aliyun": "rate_limited"}})  # the page goes by Tencent
    page = enqueue_page(engine, clock, phone=staff("street", "duty_officer").phone, incident_id=5, code="R5T6")
    late = RecordedLate(service.dispatcher.channels["sms"], engine)
    Dispatcher(engine, clock=clock, channels={"sms": late}, observers=service.app.state.delivery_observers).drain()
    with Session(engine) as s:
        row = s.get(OutboxMessage, page)
        assert row is not None and row.provider == "tencent"
        # Tencent's report names only the SerialNo, which no row carried when it came: it was held, not dropped,
        # and applied when the dispatcher recorded the send.
        assert row.status == "delivered" and row.provider_id == _inbox(simulator, row.recipient)[0]["sid"]
        assert s.exec(select(HeldReceipt)).all() == []
    assert simulator.state.duplicates() == {}


def test_a_held_report_whose_send_was_recorded_meanwhile_is_applied_by_the_safety_net(
    service: Service, engine: Engine, clock: ManualClock, staff: Staff
) -> None:
    number = staff("street", "duty_officer").phone
    page = enqueue_page(engine, clock, phone=number, incident_id=5, code="R5T6")
    report = [{"mobile": number.removeprefix("+86"), "report_status": "FAIL", "sid": "2433:held-1", "errmsg": "E:1",
               "description": "用户关机"}]  # fmt: skip
    r = httpx.post(f"{service.url}/callbacks/tencent/{TOKEN}/sms-status", json=report, timeout=10)
    assert r.status_code == 200
    with Session(engine) as s:
        assert [h.provider_id for h in s.exec(select(HeldReceipt)).all()] == ["2433:held-1"]
    # Recorded by a transaction that did not see the held report (both committed at once).
    with Session(engine) as s:
        row = s.get(OutboxMessage, page)
        assert row is not None
        row.status, row.provider, row.provider_id = "sent", "tencent", "2433:held-1"
        s.add(row)
        s.commit()
    service.dispatcher.release_held()
    with Session(engine) as s:
        row = s.get(OutboxMessage, page)
        assert row is not None and row.status == "undelivered" and "用户关机" in (row.last_error or "")
        assert s.exec(select(HeldReceipt)).all() == []


def test_a_roll_call_answered_through_alibaba_is_confirmed_with_its_own_words(
    engine: Engine, clock: ManualClock, staff: Staff, phone: Callable[[str], Phone]
) -> None:
    with transaction(engine) as s:
        data = RollCallCreate(unit_code="110106", roles=[DutyRole.duty_officer])
        code = rollcall_service.start(s, clock=clock, actor=Principal.system("t"), data=data).code
    jobs.run_tick(engine, clock=clock)
    street = phone(staff("street", "duty_officer").phone).expect_sms("[查岗]", code)
    # The reply comes by Alibaba Cloud's SmsUp push; the confirmation is the roll-call's, as Twilio's answer is.
    street.reply(f"1 {code}").expect_sms("已确认在岗", code)
    phone(staff("district", "duty_officer").phone).reply(f"1 {code}").expect_sms("未找到", code)


def test_an_invalid_recipient_fails_the_page_and_the_leader_is_paged_at_once(
    service: Service,
    simulator: Simulator,
    staff: Staff,
    key: dict[str, str],
    phone: Callable[[str], Phone],
) -> None:
    simulator.state.config.invalid_numbers = {staff("street", "duty_officer").phone}
    with httpx.Client(base_url=service.url, headers=key, timeout=10) as api:
        inc = api.post("/api/v1/incidents", json=fire()).json()
        phone(staff("district", "duty_officer").phone).expect_sms("IV级", inc["code"])
        # No clock advance: the failed page moved the street's chain on, the next tick paged the leader.
        phone(staff("street", "leader").phone).expect_sms(inc["code"])
        rows = api.get(f"/api/v1/incidents/{inc['id']}/notifications").json()["items"]
        failed = [r for r in rows if r["to"] == staff("street", "duty_officer").phone]
        # The page failed; so did the reminder that went with the leader's page (a step later, at once).
        assert {(r["status"], r["provider"]) for r in failed} == {("failed", "aliyun")}
        assert "MOBILE_NUMBER_ILLEGAL" in failed[0]["error"]
        timeline = api.get(f"/api/v1/incidents/{inc['id']}").json()["timeline"]
        kinds = [e["kind"] for e in timeline]
        assert "delivery_failed" in kinds and "page_next_now" in kinds
        assert "failover" not in kinds  # an invalid number goes to no other provider
    assert not any(m["provider"] == "tencent" for m in simulator.state.messages)


def test_pushes_with_a_wrong_token_malformed_or_repeated_change_nothing_twice(
    service: Service,
    simulator: Simulator,
    session: Session,
    staff: Staff,
    key: dict[str, str],
    phone: Callable[[str], Phone],
) -> None:
    inc = _incident(service, key)
    phone(staff("street", "duty_officer").phone).expect_sms(inc["code"])
    phone(staff("district", "duty_officer").phone).expect_sms(inc["code"])
    simulator.settle()
    row = session.exec(
        select(OutboxMessage).where(OutboxMessage.recipient == staff("street", "duty_officer").phone)
    ).one()
    item = {"phone_number": row.recipient[3:], "success": False, "biz_id": row.provider_id, "out_id": str(row.id),
            "err_code": "MK:0001", "err_msg": "x", "report_time": "2026-12-01 16:00:00"}  # fmt: skip
    with httpx.Client(base_url=service.url, timeout=10) as http:
        assert http.post("/callbacks/aliyun/wrong-token/sms-report", json=[item]).status_code == 404
        bad = http.post(f"/callbacks/aliyun/{TOKEN}/sms-report", json=[item, {"phone_number": "1"}])
        assert bad.status_code == 422 and "[1].success" in bad.text
        assert http.post(f"/callbacks/aliyun/{TOKEN}/sms-report", json={"not": "a list"}).status_code == 422
        assert http.post(f"/callbacks/tencent/{TOKEN}/sms-status", content=b"[{").status_code == 422
        session.refresh(row)
        assert row.status == "delivered"  # a late "failed" cannot move a delivered row back, and 4xx wrote nothing
        unknown = item | {"biz_id": "999^0", "out_id": "999999"}
        for _ in range(2):  # a repeated push
            r = http.post(f"/callbacks/aliyun/{TOKEN}/sms-report", json=[unknown, unknown])
            assert r.status_code == 200 and r.json() == {"code": 0, "msg": "成功"}
        metrics = http.get("/metrics").text
    line = next(x for x in metrics.splitlines() if x.startswith("dutyline_provider_push_items_ignored_total{"))
    assert 'provider="aliyun"' in line and line.endswith(" 1.0")  # applied once, counted once


def test_the_message_templates_document_is_validated_on_write(
    service: Service, session: Session, clock: ManualClock
) -> None:
    admin = make_person(session, clock, unit="110000", roles=["admin"], username="tpl.admin")
    session.commit()
    with httpx.Client(base_url=service.url, timeout=10) as http:
        form = {"username": admin.username or "", "password": PASSWORD}
        token = http.post("/api/v1/auth/token", data=form)
        assert token.status_code == 200, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        doc = http.get("/api/v1/message-templates").json()
        assert doc["version"] == 1 and set(doc["providers"]) == {"aliyun", "tencent", "aliyun_voice"}
        page = doc["providers"]["aliyun"]["templates"]["incident_page"]
        assert page["text"] == (
            "[${grade}事件·${category}]${unit}：${title}。地址：${address}；伤亡：${casualties}。编号${code}，"
            "请于${window}内回复1签收"
        )
        body = {"providers": doc["providers"]}

        missing = {"providers": {k: v for k, v in doc["providers"].items() if k != "tencent"}}
        r = http.put("/api/v1/message-templates", json=missing)
        assert r.status_code == 422 and "missing: tencent." in r.json()["message"]
        assert "providers.tencent.templates.incident_page" in {e["field"] for e in r.json()["errors"]}

        linked = _with(body, "tencent", "incident_page", text="[{1}级{2}]{3}:{4}。编号{5},详见 www.example.cn")
        r = http.put("/api/v1/message-templates", json=linked)
        assert r.status_code == 422 and "link" in r.json()["message"]
        phone_in = _with(body, "aliyun", "incident_page", text=page["text"] + "或拨打 010-12345678")
        assert http.put("/api/v1/message-templates", json=phone_in).status_code == 422
        too_long = _with(body, "tencent", "incident_page", max_length={"title": 40})
        assert http.put("/api/v1/message-templates", json=too_long).status_code == 422
        assert http.get("/api/v1/message-templates").json()["version"] == 1  # nothing written

        renamed = _with(body, "aliyun", "incident_page", template_id="SMS_000001")
        r = http.put("/api/v1/message-templates", json=renamed)
        assert r.status_code == 200 and r.json()["version"] == 2
        got = http.get("/api/v1/message-templates").json()
        assert got["providers"]["aliyun"]["templates"]["incident_page"]["template_id"] == "SMS_000001"


def _with(body: dict[str, Any], provider: str, template: str, **changes: Any) -> dict[str, Any]:
    providers = {k: {**v, "templates": dict(v["templates"])} for k, v in body["providers"].items()}
    providers[provider]["templates"][template] = providers[provider]["templates"][template] | changes
    return {"providers": providers}


def test_with_both_mainland_providers_down_pages_wait_and_go_out_once_when_one_is_back(
    service: Service,
    simulator: Simulator,
    clock: ManualClock,
    staff: Staff,
    key: dict[str, str],
    phone: Callable[[str], Phone],
) -> None:
    simulator.http.patch("/config", json={"faults": {"aliyun": "down", "tencent": "down"}}).raise_for_status()
    inc = _incident(service, key)
    # The service's own tick pages the intake (woken by its commit, on its thread): drain until both are out.
    report = service.dispatcher.drain()
    deadline = time.monotonic() + 10
    while report.claimed < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        report.add(service.dispatcher.drain())
    assert report.claimed == 2 and report.retried == 2 and report.sent == 0
    assert simulator.state.messages == []
    # Alibaba Cloud stays down; Tencent comes back: at the next attempt the pages go by Tencent, once each.
    simulator.http.patch("/config", json={"faults": {"tencent": None}}).raise_for_status()
    clock.advance(seconds=60)
    phone(staff("street", "duty_officer").phone).expect_sms(inc["code"])
    phone(staff("district", "duty_officer").phone).expect_sms(inc["code"])
    assert {m["provider"] for m in simulator.state.messages} == {"tencent"}
    assert simulator.state.duplicates() == {}
    assert simulator.state.injected["aliyun_down"] >= 2 and simulator.state.injected["tencent_down"] >= 2
