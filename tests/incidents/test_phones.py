"""The duty office by phone: pages arrive as SMS and calls from the Twilio simulator; replying 1 or pressing 1
acknowledges through the same function as the console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from app.clock import ManualClock
from tests.incidents.helpers import Staff, fire, key_for, staff_chain
from tests.notify.conftest import Phone, Service


@pytest.fixture
def staff(session: Session, clock: ManualClock) -> Staff:
    """The chain, written before the service starts: on SQLite a test's own writes (a password hashed between a
    read and a write) would otherwise meet the live server's tick writing every second ("database is locked")."""
    people = staff_chain(session, clock)
    session.commit()
    return people


@pytest.fixture
def key(session: Session, clock: ManualClock, staff: Staff) -> dict[str, str]:  # noqa: ARG001 (order: staff first)
    made = key_for(session, clock, "119")
    session.commit()
    return made


@pytest.fixture
def service_options(key: dict[str, str]) -> dict[str, Any]:  # noqa: ARG001 (the staff and key come first)
    return {}


def test_reply_1_acknowledges_for_the_street(
    service: Service, staff: Staff, key: dict[str, str], phone: Callable[[str], Phone]
) -> None:
    with httpx.Client(base_url=service.url, headers=key, timeout=10) as api:
        inc = api.post("/api/v1/incidents", json=fire()).json()
        street = phone(staff("street", "duty_officer").phone)
        street.expect_sms("IV级", inc["code"], "回复1签收").reply("1").expect_sms("已签收", inc["code"])
        phone(staff("district", "duty_officer").phone).expect_sms("IV级", inc["code"])
        tiers = {t["tier"]: t for t in api.get(f"/api/v1/incidents/{inc['id']}").json()["tiers"]}
        assert tiers["street"]["acknowledged_by"]["id"] == staff("street", "duty_officer").id
        assert tiers["street"]["next_step_at"] is None
        assert tiers["district"]["acknowledged_at"] is None
        timeline = api.get(f"/api/v1/incidents/{inc['id']}").json()["timeline"]
        acks = [e for e in timeline if e["kind"] == "ack" and e["data"]["via"] == "sms"]
        assert any("签收（短信）" in e["message"] for e in acks)


def test_a_city_leader_acknowledges_a_level_ii_call_by_pressing_1(
    service: Service, staff: Staff, key: dict[str, str], phone: Callable[[str], Phone]
) -> None:
    deaths = {"deaths": 12, "injuries": 0, "trapped": 0, "missing": 0}
    with httpx.Client(base_url=service.url, headers=key, timeout=10) as api:
        inc = api.post("/api/v1/incidents", json=fire(casualties=deaths)).json()
        assert inc["severity"] == "II"
        for tier in ("street", "district", "city"):
            phone(staff(tier, "duty_officer").phone).expect_sms("II级", inc["code"])
            leader = phone(staff(tier, "leader").phone).expect_sms("II级", inc["code"])
            leader.expect_call("重大（二级）", " ".join(inc["code"]))
        phone(staff("city", "leader").phone).press("1", "已签收")
        tiers = {t["tier"]: t for t in api.get(f"/api/v1/incidents/{inc['id']}").json()["tiers"]}
        assert tiers["city"]["acknowledged_by"]["id"] == staff("city", "leader").id
        assert tiers["district"]["acknowledged_at"] is None
