"""Hostile and malformed input gets a clear 4xx JSON error and changes nothing (issue 7's bad-input list)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.incidents.models import Incident
from tests.factories import signed_in
from tests.incidents.helpers import fire, key_for


def _incidents(session: Session) -> int:
    session.commit()
    return session.exec(select(func.count()).select_from(Incident)).one()


def _clear_4xx(r: httpx.Response) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    body: dict[str, Any] = r.json()
    assert body["code"] and body["message"]
    return body


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),  # deep JSON
        (b'{"title": "\xff\xfe\xfa"}', "application/json"),  # invalid UTF-8
        (b'{"title": "x"', "application/json"),  # truncated
        (b"external_id=1&title=x", "application/x-www-form-urlencoded"),  # wrong content type
        (b"<incident/>", "application/xml"),
        (b"", "application/json"),
    ],
)
def test_malformed_bodies_are_refused_and_change_nothing(
    client: TestClient, session: Session, clock: ManualClock, content: bytes, content_type: str
) -> None:
    key = key_for(session, clock, "119")
    before = _incidents(session)
    r = client.post("/api/v1/incidents", content=content, headers={**key, "content-type": content_type})
    _clear_4xx(r)
    assert _incidents(session) == before


def test_sql_ish_strings_are_data_not_sql(client: TestClient, session: Session, clock: ManualClock) -> None:
    key = key_for(session, clock, "119")
    sly = "'; DROP TABLE incident; --"
    body = _clear_4xx(client.post("/api/v1/incidents", json=fire(unit_code=sly), headers=key))
    assert any(e["field"].endswith("unit_code") for e in body["errors"])
    r = client.post("/api/v1/incidents", json=fire(title=sly, external_id=sly), headers=key)
    assert r.status_code == 201, r.text
    assert client.get(f"/api/v1/incidents/{r.json()['id']}", headers=key).json()["title"] == sly
    _clear_4xx(client.get("/api/v1/incidents", params={"unit": sly}, headers=key))
    assert _incidents(session) == 1


def test_huge_page_sizes_and_offsets_are_refused_by_name(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    key = key_for(session, clock, "119")
    for params, field in (({"limit": 100_000}, "limit"), ({"offset": 10**12}, "offset"), ({"limit": -1}, "limit")):
        body = _clear_4xx(client.get("/api/v1/incidents", params=params, headers=key))
        assert any(e["field"].endswith(field) for e in body["errors"]), body


@pytest.mark.parametrize("text", ["a\x00b", "\ud870x"])  # NUL; an unpaired surrogate (a JSON \ud870 escape)
def test_text_no_database_can_store_is_a_422_not_a_500(
    client: TestClient, session: Session, clock: ManualClock, text: str
) -> None:
    # Found by the fuzz drill on PostgreSQL: both used to reach the driver and fail there with a 500.
    key = key_for(session, clock, "119")
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])

    def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        # json.dumps escapes both as \u0000 / \ud870, as an integrator's JSON library would send them.
        r: httpx.Response = client.post(
            path, content=json.dumps(body), headers={**headers, "content-type": "application/json"}
        )
        return r

    if "\x00" in text:  # a surrogate cannot even be put into a URL
        body = _clear_4xx(client.get("/api/v1/people", params={"q": text}, headers=admin))
        assert body["errors"][0]["field"] == "text"
    _clear_4xx(post("/api/v1/incidents", fire(title=f"起火{text}"), key))
    assert _incidents(session) == 0
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    body = _clear_4xx(post(f"/api/v1/incidents/{inc['id']}/resolve", {"reason": text}, admin))
    assert body["errors"][0]["field"] in ("text", "reason")
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()["status"] != "resolved"


def _integers(spec: dict[str, Any], schema: dict[str, Any], path: str, seen: set[str]) -> list[tuple[str, Any]]:
    """Every integer a request may carry, with its `maximum` (following $refs, unions, arrays and objects)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _integers(spec, spec["components"]["schemas"][name], path, seen | {name})
    found: list[tuple[str, Any]] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for member in schema.get(key, []):
            found += _integers(spec, member, path, seen)
    if schema.get("type") == "integer":
        found.append((path, schema.get("maximum")))
    if "items" in schema:
        found += _integers(spec, schema["items"], f"{path}[]", seen)
    for name, prop in schema.get("properties", {}).items():
        found += _integers(spec, prop, f"{path}.{name}", seen)
    return found


def test_every_integer_the_api_takes_is_bounded_for_the_database(client: TestClient) -> None:
    """Ids in paths, queries and bodies alike: nothing above PostgreSQL's `integer` reaches the driver."""
    spec = client.get("/openapi.json").json()
    unbounded = []
    for route, operations in spec["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {route}"
            found = [
                hit
                for p in op.get("parameters", [])
                for hit in _integers(spec, p.get("schema", {}), f"{where} {p['in']} {p['name']}", set())
            ]
            for content in op.get("requestBody", {}).get("content", {}).values():
                found += _integers(spec, content.get("schema", {}), f"{where} body", set())
            unbounded += [path for path, maximum in found if maximum is None or maximum > 2_147_483_647]
    assert unbounded == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/rotations", {"participants": [4031180231]}, "participants.0"),
        ("/api/v1/rotations", {"participants": [0]}, "participants.0"),
        ("/api/v1/shifts", {"person": 2_147_483_648}, "person"),
        ("/api/v1/overrides", {"person": -5}, "person"),
        ("/api/v1/overrides/swap", {"first": {"person": 9_999_999_999}}, "first.person"),
        ("/api/v1/shifts/handover", {"incoming": 4031180231}, "incoming"),
    ],
)
def test_ids_in_bodies_are_bounded_and_named(
    client: TestClient, session: Session, clock: ManualClock, path: str, body: dict[str, Any], field: str
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post(path, json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()["errors"]


def test_a_complete_rotation_with_an_absurd_participant_id_is_a_422(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    """The fuzz drill's case: on PostgreSQL this was `integer out of range`, a 500."""
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    body = {"unit_code": "110106", "role": "duty_officer", "participants": [4031180231], "start_date": "2026-04-20"}
    r = client.post("/api/v1/rotations", json=body, headers=admin)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["participants.0"], r.text
    as_text = {**body, "participants": ["4031180231"]}  # digits as text: looked up as a phone, never as an id
    r = client.post("/api/v1/rotations", json=as_text, headers=admin)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["participants.0"], r.text
