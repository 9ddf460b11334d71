"""With no provider credentials the app mounts the simulator at /sim and pages go through it, end to end:
+86 numbers by the Alibaba Cloud simulator (through its SDK), others by the Twilio one."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from app.notify.models import OutboxMessage
from tests.notify.live import LiveServer
from tests.notify.pages import enqueue_page


def _inbox(base: str, phone: str, count: int) -> list[dict[str, Any]]:
    inbox: list[dict[str, Any]] = []
    for _ in range(250):
        inbox = httpx.get(f"{base}/sim/messages", params={"to": phone}, timeout=30).json()
        if len(inbox) >= count:
            break
        time.sleep(0.02)
    return inbox


def test_without_credentials_the_built_in_simulator_carries_pages_and_replies(
    engine: Engine, clock: ManualClock, database_url: str
) -> None:
    server = LiveServer()
    settings = Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        PUBLIC_BASE_URL=server.url,
        DUTYLINE_DISPATCH_POLL_SECONDS=0.05,
    )
    assert settings.simulator_enabled and settings.dispatcher
    app = create_app(settings, engine=engine, clock=clock)
    server.start(app)
    try:
        page_id = enqueue_page(engine, clock, phone="+8613800000011", incident_id=3, code="D3M0")
        # The running dispatcher picks it up by itself (woken by the commit); +86 goes by Alibaba Cloud.
        inbox = _inbox(server.url, "+8613800000011", 1)
        assert [(m["provider"], m["body"]) for m in inbox] == [
            ("aliyun", "【应急值守】[III级火灾]右安门街道:某医院住院部起火。编号D3M0,回复1签收")
        ]
        # The reply goes in through Alibaba Cloud's SmsUp push; the confirmation comes back as an SMS.
        r = httpx.post(f"{server.url}/sim/messages", json={"from": "+8613800000011", "body": "1"}, timeout=30)
        assert r.json() == {"status": 200, "replies": [], "provider": "aliyun"}
        inbox = _inbox(server.url, "+8613800000011", 2)
        assert [(m["provider"], m["body"]) for m in inbox[1:]] == [("aliyun", "【应急值守】已签收 D3M0")]
        with Session(engine) as session:
            row = session.get(OutboxMessage, page_id)
            assert row is not None and row.acknowledged_via == "sms" and row.provider == "aliyun"
        # Any other number still goes by Twilio (its simulator), and a reply is answered in TwiML.
        enqueue_page(engine, clock, phone="+12025550123", incident_id=4, code="D3M1")
        assert [m["provider"] for m in _inbox(server.url, "+12025550123", 1)] == ["twilio"]
        r = httpx.post(f"{server.url}/sim/messages", json={"from": "+12025550123", "body": "1"}, timeout=30)
        assert r.json() == {"status": 200, "replies": ["已签收 D3M1"]}
    finally:
        server.stop()
