"""Scenario helpers over the live service and the Twilio simulator: report, read a phone's SMS and calls."""

from __future__ import annotations

from typing import Any

import httpx

from tests.incidents.helpers import fire
from tests.notify.conftest import Service, Simulator

TIMEOUT = 30.0  # the machine is shared and busy: an intake may take seconds


def sms_to(simulator: Simulator, phone: str) -> list[str]:
    simulator.settle()
    return [m["body"] for m in simulator.http.get("/messages", params={"to": phone}).json()]


def calls_to(simulator: Simulator, phone: str) -> list[dict[str, Any]]:
    simulator.settle()
    calls: list[dict[str, Any]] = simulator.http.get("/calls", params={"to": phone}).json()
    return calls


def report(service: Service, key: dict[str, str], n: int, **overrides: Any) -> dict[str, Any]:
    """Incident n in the street (each elsewhere and titled apart, so none is taken for a repeat of another)."""
    body = fire(external_id=f"119-{n}", title=f"第{n}处起火", location={"lat": 39.8 + n / 100, "lon": 116.3})
    r = httpx.post(f"{service.url}/api/v1/incidents", json=body | overrides, headers=key, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    incident: dict[str, Any] = r.json()
    return incident


def timeline(service: Service, key: dict[str, str], incident_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{service.url}/api/v1/incidents/{incident_id}", headers=key, timeout=TIMEOUT)
    entries: list[dict[str, Any]] = r.json()["timeline"]
    return entries
