"""With no Twilio credentials the app mounts the simulator at /sim and pages go through it, end to end."""

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
        # The running dispatcher picks it up by itself (woken by the commit).
        inbox: list[dict[str, Any]] = []
        for _ in range(200):
            inbox = httpx.get(f"{server.url}/sim/messages", params={"to": "+8613800000011"}).json()
            if inbox:
                break
            time.sleep(0.02)
        assert [m["body"] for m in inbox] == ["【III级火灾】右安门街道:某医院住院部起火。编号D3M0,回复1签收"]
        r = httpx.post(f"{server.url}/sim/messages", json={"from": "+8613800000011", "body": "1"})
        assert r.json() == {"status": 200, "replies": ["已签收 D3M0"]}
        with Session(engine) as session:
            row = session.get(OutboxMessage, page_id)
            assert row is not None and row.acknowledged_via == "sms"
    finally:
        server.stop()
