"""Who may write what, where: every write endpoint × role × scope (属地).

Targets sit in 丰台区 (110106) and its street 右安门街道 (110106001). The actors are a city admin, 丰台区's
unit admin, the unit admin of the sibling district 朝阳区 (110105), a street duty officer, a city viewer,
an agency key scoped to 丰台区 and a read-only agency key. A refusal is 403 (or 404 where the object is
outside one's scope and so not to be probed); an allowed write succeeds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.clock import ManualClock
from tests.factories import make_person, signed_in
from tests.incidents.helpers import fire, key_for

ACTORS = ("city_admin", "fengtai_admin", "chaoyang_admin", "street_officer", "city_viewer", "fengtai_key", "read_key")
_n = itertools.count(1)


@dataclass
class World:
    client: TestClient
    session: Session
    clock: ManualClock
    headers: dict[str, dict[str, str]]
    person_id: int
    hazard_id: int | None = None


@pytest.fixture
def world(client: TestClient, session: Session, clock: ManualClock) -> World:
    headers = {
        "city_admin": signed_in(client, session, clock, unit="110000", roles=["admin"]),
        "fengtai_admin": signed_in(client, session, clock, unit="110106", roles=["unit_admin"]),
        "chaoyang_admin": signed_in(client, session, clock, unit="110105", roles=["unit_admin"]),
        "street_officer": signed_in(client, session, clock, unit="110106001", roles=["duty_officer"]),
        "city_viewer": signed_in(client, session, clock, unit="110000", roles=["viewer"]),
        "fengtai_key": key_for(
            session,
            clock,
            "ft-gas",
            kind="gas",
            unit="110106",
            scopes=["incidents:write", "incidents:read", "webhooks:write", "heartbeats:write"],
        ),
        "read_key": key_for(session, clock, "ro-110", kind="police", scopes=["incidents:read"]),
    }
    target = make_person(session, clock, unit="110106001", roles=["duty_officer"])
    assert target.id is not None
    return World(client, session, clock, headers, target.id)


def _person_body() -> dict[str, Any]:
    n = next(_n)
    return {"name": f"新人{n}", "phone": f"+86137{n:08d}", "unit_code": "110106001", "roles": ["duty_officer"]}


def _cover(w: World) -> dict[str, Any]:
    start = w.clock.now().replace(microsecond=0) + timedelta(hours=next(_n))  # never overlapping an earlier one
    return {
        "unit_code": "110106001",
        "role": "duty_officer",
        "person": w.person_id,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=30)).isoformat(),
    }


def _rules(w: World) -> dict[str, Any]:
    body: dict[str, Any] = w.client.get("/api/v1/response-rules", headers=w.headers["city_admin"]).json()
    return body


def _hazard_body(w: World) -> dict[str, Any]:
    found = w.clock.now()
    return {
        "unit_code": "110106001",
        "venue": f"场所{next(_n)}",
        "venue_category": "hospital",
        "level": "general",
        "found_at": found.isoformat(),
        "source": "inspection",
        "responsible_org": "某医院",
        "responsible_person": "王院长",
        "responsible_phone": "13800138000",
        "deadline": (found + timedelta(days=7)).date().isoformat(),
    }


def _hazard(w: World) -> int:
    """A hazard of 右安门街道, made by the city admin (once per test)."""
    if w.hazard_id is None:
        r = w.client.post("/api/v1/hazards", json=_hazard_body(w), headers=w.headers["city_admin"])
        assert r.status_code == 201, r.text
        w.hazard_id = int(r.json()["id"])
    return w.hazard_id


def _templates(w: World) -> dict[str, Any]:
    body: dict[str, Any] = w.client.get("/api/v1/message-templates", headers=w.headers["city_admin"]).json()
    return body


Call = Callable[[World, dict[str, str]], Any]

# endpoint → (how to call it, the actors allowed)
WRITES: dict[str, tuple[Call, set[str]]] = {
    "POST /api/v1/people": (
        lambda w, h: w.client.post("/api/v1/people", json=_person_body(), headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "PATCH /api/v1/people/{person_id}": (
        lambda w, h: w.client.patch(f"/api/v1/people/{w.person_id}", json={"name": f"改名{next(_n)}"}, headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/people/{person_id}/unlock": (
        lambda w, h: w.client.post(f"/api/v1/people/{w.person_id}/unlock", headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/agencies": (
        lambda w, h: w.client.post(
            "/api/v1/agencies",
            headers=h,
            json={"code": f"ag{next(_n)}", "name": "x", "kind": "gas", "unit_code": "110106"},
        ),
        {"city_admin"},
    ),
    "POST /api/v1/rotations": (
        lambda w, h: w.client.post(
            "/api/v1/rotations",
            headers=h,
            json={
                "unit_code": "110106001",
                "role": "leader",
                "participants": [w.person_id],
                "start_date": "2026-05-01",
            },
        ),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/shifts": (
        lambda w, h: w.client.post("/api/v1/shifts", json=_cover(w), headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/overrides": (
        lambda w, h: w.client.post("/api/v1/overrides", json=_cover(w), headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/incidents": (
        lambda w, h: w.client.post("/api/v1/incidents", json=fire(external_id=f"a{next(_n)}"), headers=h),
        {"city_admin", "street_officer", "fengtai_key"},
    ),
    "PUT /api/v1/response-rules": (
        lambda w, h: w.client.put("/api/v1/response-rules", json=_rules(w), headers=h),
        {"city_admin"},
    ),
    "PUT /api/v1/message-templates": (
        lambda w, h: w.client.put("/api/v1/message-templates", json=_templates(w), headers=h),
        {"city_admin"},
    ),
    "POST /api/v1/webhook-subscriptions": (
        lambda w, h: w.client.post(
            "/api/v1/webhook-subscriptions", headers=h, json={"url": "https://cad.example/hooks", "unit_code": "110106"}
        ),
        {"city_admin", "fengtai_key"},
    ),
    "POST /api/v1/hazards": (
        lambda w, h: w.client.post("/api/v1/hazards", json=_hazard_body(w), headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/hazards/{hazard_id}/plan": (
        lambda w, h: w.client.post(
            f"/api/v1/hazards/{_hazard(w)}/plan", json={"measures": "清理通道", "person": "王院长"}, headers=h
        ),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/units/{code}/robots": (
        lambda w, h: w.client.post(
            "/api/v1/units/110106001/robots",
            headers=h,
            json={"kind": "wecom", "webhook_url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k{next(_n)}"},
        ),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/heartbeats/{name}": (
        lambda w, h: w.client.post(f"/api/v1/heartbeats/hb{next(_n)}", json={"interval_seconds": 60}, headers=h),
        {"fengtai_key"},
    ),
    "POST /api/v1/roll-calls": (
        lambda w, h: w.client.post("/api/v1/roll-calls", json={"unit_code": "110106"}, headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/roll-call-schedules": (
        lambda w, h: w.client.post("/api/v1/roll-call-schedules", json={"unit_code": "110106"}, headers=h),
        {"city_admin", "fengtai_admin"},
    ),
    "POST /api/v1/notices": (
        lambda w, h: w.client.post(
            "/api/v1/notices",
            json={"title": "通知", "body": "内容", "unit_code": "110106", "to": {"scope": "children"}},
            headers=h,
        ),
        {"city_admin", "fengtai_admin"},
    ),
}

# Writes whose authority is tested elsewhere, with where.
ELSEWHERE = {
    "POST /api/v1/auth/token": "anyone may try to sign in (tests/auth/test_sign_in.py)",
    "POST /api/v1/agencies/{code}/api-keys": "tests/auth/test_api_keys.py",
    "DELETE /api/v1/api-keys/{prefix}": "tests/auth/test_api_keys.py",
    "PATCH /api/v1/rotations/{rotation_id}": "tests/roster/test_api.py",
    "DELETE /api/v1/rotations/{rotation_id}": "tests/roster/test_api.py",
    "POST /api/v1/overrides/swap": "tests/roster/test_api.py",
    "DELETE /api/v1/overrides/{override_id}": "tests/roster/test_api.py",
    "POST /api/v1/rosters/import": "tests/roster/test_api.py",
    "POST /api/v1/people/{person_id}/calendar-url/rotate": "tests/roster/test_api.py",
    "DELETE /api/v1/shifts/{shift_id}": "roster admins of the unit (tests/roster/test_gaps_made.py)",
    "POST /api/v1/shifts/check-in": "only the person on duty (tests/roster/test_api.py)",
    "POST /api/v1/shifts/handover": "only the person on duty (tests/roster/test_api.py)",
    "POST /api/v1/incidents/{incident_id}/reports": "tests/incidents/test_api.py",
    "POST /api/v1/incidents/{incident_id}/ack": "one's own tier only (tests/incidents/test_escalation.py)",
    "POST /api/v1/incidents/{incident_id}/escalate": "tests/incidents/test_api.py",
    "POST /api/v1/incidents/{incident_id}/severity": "tests/incidents/test_api.py",
    "POST /api/v1/incidents/{incident_id}/resolve": "tests/incidents/test_api.py",
    "POST /api/v1/incidents/{incident_id}/close": "tests/incidents/test_api.py",
    "DELETE /api/v1/webhook-subscriptions/{subscription_id}": "tests/notify/test_webhooks.py",
    "POST /api/v1/webhook-deliveries/{delivery_id}/replay": "tests/notify/test_webhooks.py",
    "POST /api/v1/roll-calls/{roll_call_id}/answer": "only the person at the post (tests/rollcall/test_api.py)",
    "POST /api/v1/notices/{notice_id}/sign": "only the person on duty or the admin (tests/notices/test_api.py)",
    "POST /api/v1/notices/{notice_id}/feedback": "as signing (tests/notices/test_api.py)",
    "POST /api/v1/notices/{notice_id}/forward": "as signing, to one's own subtree (tests/notices/test_api.py)",
    "POST /api/v1/incidents/{incident_id}/instructions": "a leader on the chain (tests/notices/test_instructions.py)",
    "POST /api/v1/warnings/cap": "a key with warnings:write, in its scope (tests/notices/test_cap.py)",
    "POST /api/v1/hazards/import": "a row outside one's scope is a 422 naming it (tests/hazards/test_lists.py)",
    "POST /api/v1/hazards/{hazard_id}/photos": "tests/hazards/test_photos.py",
    "POST /api/v1/hazards/{hazard_id}/submit": "state and role (tests/hazards/test_api.py)",
    "POST /api/v1/hazards/{hazard_id}/verify": "leader; tier above if major (tests/hazards/test_api.py)",
    "POST /api/v1/hazards/{hazard_id}/extension": "the tier above (tests/hazards/test_api.py)",
    "POST /api/v1/hazards/{hazard_id}/listing": "district or city, major only (tests/hazards/test_api.py)",
    "DELETE /api/v1/units/{code}/robots/{robot_id}": "tests/notify/test_robots.py",
}


def test_every_write_endpoint_is_in_the_table(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    writes = {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    }
    assert writes - set(WRITES) - set(ELSEWHERE) == set(), "a write endpoint nobody has checked for authority"
    assert set(WRITES) | set(ELSEWHERE) <= writes, "the table names an endpoint that no longer exists"


@pytest.mark.parametrize("endpoint", sorted(WRITES))
def test_only_the_right_actors_in_the_right_scope_may_write(world: World, endpoint: str) -> None:
    call, allowed = WRITES[endpoint]
    outcomes = {}
    for actor in ACTORS:
        r = call(world, world.headers[actor])
        outcomes[actor] = r.status_code
        if actor in allowed:
            assert r.status_code in (200, 201), (endpoint, actor, r.text)
        else:
            assert r.status_code in (403, 404), (endpoint, actor, r.status_code, r.text)
    assert {a for a, code in outcomes.items() if code in (200, 201)} == allowed


def test_a_street_duty_officer_cannot_report_outside_their_street(world: World) -> None:
    r = world.client.post(
        "/api/v1/incidents", json=fire(unit_code="110106002"), headers=world.headers["street_officer"]
    )
    assert r.status_code == 403
    r = world.client.post("/api/v1/incidents", json=fire(unit_code="110105001"), headers=world.headers["fengtai_key"])
    assert r.status_code == 403
