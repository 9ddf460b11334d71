from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from sqlalchemy import Engine
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from app.clock import ManualClock
from app.notify.models import OutboxMessage
from tests.notify.conftest import SIM_DEFAULTS, Phone, Service, Simulator
from tests.notify.pages import enqueue_page

DUTY = "+8613800000101"
LEADER = "+8613800000102"


def _row(engine: Engine, message_id: int) -> OutboxMessage:
    with Session(engine) as s:
        row = s.get(OutboxMessage, message_id)
        assert row is not None
        return row


def _wait_status(engine: Engine, message_id: int, status: str, timeout: float = 5.0) -> OutboxMessage:
    deadline = time.monotonic() + timeout
    while True:
        row = _row(engine, message_id)
        if row.status == status or time.monotonic() > deadline:
            return row
        time.sleep(0.02)


def test_a_page_is_acknowledged_by_replying_1(
    engine: Engine, clock: ManualClock, phone: Callable[[str], Phone]
) -> None:
    page_id = enqueue_page(engine, clock, phone=DUTY, incident_id=41, code="F3K7")
    phone(DUTY).expect_sms("III级", "F3K7", "回复1签收").reply("1").expect_sms("已签收", "F3K7")

    row = _wait_status(engine, page_id, "delivered")
    assert row.status == "delivered" and row.provider_id and row.provider_id.startswith("SM")
    assert row.acknowledged_via == "sms" and row.acknowledged_at == clock.now()


def test_reply_with_a_code_acknowledges_that_incident(
    engine: Engine, clock: ManualClock, phone: Callable[[str], Phone]
) -> None:
    first = enqueue_page(engine, clock, phone=DUTY, incident_id=1, code="A1B2", title="燃气泄漏")
    clock.advance(minutes=1)
    second = enqueue_page(engine, clock, phone=DUTY, incident_id=2, code="C3D4", title="电动车起火")
    duty = phone(DUTY).expect_sms("A1B2").expect_sms("C3D4")

    # Full-width digits and letters, as a Chinese keyboard types them, and a lower-case code.
    duty.reply("１ ａ１b２").expect_sms("已签收 A1B2")
    assert _row(engine, first).acknowledged_at is not None
    assert _row(engine, second).acknowledged_at is None

    duty.reply(" 1 ").expect_sms("已签收 C3D4")  # plain 1: the newest pending page
    assert _row(engine, second).acknowledged_via == "sms"
    duty.reply("1").expect_sms("没有待签收")


def test_anything_else_gets_help_and_changes_nothing(
    engine: Engine, clock: ManualClock, phone: Callable[[str], Phone]
) -> None:
    page_id = enqueue_page(engine, clock, phone=DUTY, incident_id=7, code="Z9Y8")
    duty = phone(DUTY).expect_sms("Z9Y8")
    duty.reply("收到").expect_sms("回复1签收")
    duty.reply("2").expect_sms("回复1签收")
    duty.reply("1 NOPE").expect_sms("未找到", "NOPE")
    phone(LEADER).reply("1").expect_sms("没有待签收")  # a page to someone else is not theirs to acknowledge
    assert _row(engine, page_id).acknowledged_at is None


def test_voice_page_is_acknowledged_by_pressing_1(
    engine: Engine, clock: ManualClock, phone: Callable[[str], Phone]
) -> None:
    call_id = enqueue_page(engine, clock, phone=LEADER, incident_id=9, code="K2M4", level="I", channel="voice")
    phone(LEADER).expect_call("特别重大（一级）", "K 2 M 4", "签收请按1").press("1", "已签收")
    row = _row(engine, call_id)
    assert row.acknowledged_via == "voice" and row.status == "delivered"
    assert row.provider_id and row.provider_id.startswith("CA")


def _signed_post(url: str, params: dict[str, str], token: str) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature})


def test_forged_callbacks_get_403_and_change_nothing(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator, phone: Callable[[str], Phone]
) -> None:
    simulator.configure(send_callbacks=False)  # the genuine receipts stay away; only forged ones arrive
    page_id = enqueue_page(engine, clock, phone=DUTY, incident_id=3, code="Q1W2")
    phone(DUTY).expect_sms("Q1W2")
    sid = _row(engine, page_id).provider_id
    assert sid is not None

    status_url = f"{service.url}/twilio/sms/status?oid={page_id}"
    receipt = {"MessageSid": sid, "MessageStatus": "undelivered", "AccountSid": SIM_DEFAULTS.account_sid}
    inbound_url = f"{service.url}/twilio/sms/inbound"
    reply = {"From": DUTY, "Body": "1", "MessageSid": "SMforged", "AccountSid": SIM_DEFAULTS.account_sid}

    assert _signed_post(status_url, receipt, "not-the-token").status_code == 403
    assert httpx.post(status_url, data=receipt).status_code == 403  # no signature at all
    assert _signed_post(inbound_url, reply, "not-the-token").status_code == 403
    # A genuine signature, but for another URL (a replayed or altered request), is forged too.
    forged_elsewhere = RequestValidator(SIM_DEFAULTS.auth_token).compute_signature(status_url + "&x=1", receipt)
    r = httpx.post(status_url, data=receipt, headers={"X-Twilio-Signature": forged_elsewhere})
    assert r.status_code == 403
    row = _row(engine, page_id)
    assert row.status == "sent" and row.acknowledged_at is None

    # The genuine token works (and the receipt moves the row forward).
    assert _signed_post(status_url, receipt, SIM_DEFAULTS.auth_token).status_code == 204
    assert _row(engine, page_id).status == "undelivered"
