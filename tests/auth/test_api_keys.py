from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth.models import ApiKey
from app.clock import ManualClock
from tests.factories import make_agency, signed_in


def test_api_key_is_shown_once_stored_as_digest_and_revocable(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    make_agency(session, clock, code="119", kind="fire")
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post("/api/v1/agencies/119/api-keys", json={"scopes": ["incidents:write", "units:read"]}, headers=admin)
    assert r.status_code == 201
    key, prefix = r.json()["key"], r.json()["prefix"]
    stored = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).one()
    assert key not in (stored.digest, stored.prefix) and len(stored.digest) == 64

    units = client.get("/api/v1/units", params={"tier": "district"}, headers={"X-API-Key": key})
    assert units.status_code == 200 and units.json()["total"] == 16
    # Scopes are enforced: this key has no people:read.
    assert client.get("/api/v1/people", headers={"X-API-Key": key}).status_code == 403

    assert client.delete(f"/api/v1/api-keys/{prefix}", headers=admin).status_code == 200
    assert client.get("/api/v1/units", headers={"X-API-Key": key}).status_code == 401
    assert client.get("/api/v1/units", headers={"X-API-Key": key + "x"}).status_code == 401


def test_unknown_scope_is_refused(client: TestClient, session: Session, clock: ManualClock) -> None:
    make_agency(session, clock, code="120", kind="ambulance")
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post("/api/v1/agencies/120/api-keys", json={"scopes": ["everything"]}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "scopes"
    assert session.exec(select(ApiKey)).first() is None


def test_district_admin_cannot_make_keys_for_a_citywide_agency(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    make_agency(session, clock, code="110", kind="police")
    make_agency(session, clock, code="ft-gas", kind="gas", unit="110106")
    district_admin = signed_in(client, session, clock, unit="110106", roles=["admin"])
    assert (
        client.post(
            "/api/v1/agencies/110/api-keys", json={"scopes": ["incidents:write"]}, headers=district_admin
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/agencies/ft-gas/api-keys", json={"scopes": ["incidents:write"]}, headers=district_admin
        ).status_code
        == 201
    )
    r = client.post("/api/v1/agencies", json={"code": "x", "name": "x", "kind": "gas"}, headers=district_admin)
    assert r.status_code == 422  # code too short, and no unit_code
    r = client.post("/api/v1/agencies", json={"code": "xy", "name": "x", "kind": "gas"}, headers=district_admin)
    assert r.status_code == 403
