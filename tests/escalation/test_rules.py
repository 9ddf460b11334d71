from __future__ import annotations

import copy

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.clock import ManualClock
from tests.factories import signed_in


def test_get_then_put_the_same_document_makes_a_new_version(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    rules = client.get("/api/v1/response-rules", headers=admin).json()
    assert rules["version"] == 1
    assert rules["levels"]["IV"]["ack_window_seconds"] == 300 and rules["levels"]["I"]["ack_window_seconds"] == 180
    assert rules["levels"]["III"]["informed"] == ["city"]
    assert rules["levels"]["II"]["first_report_due_seconds"] == 1800
    rules["levels"]["IV"]["ack_window_seconds"] = 30
    r = client.put("/api/v1/response-rules", json=rules, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["levels"]["IV"]["ack_window_seconds"] == 30
    assert client.get("/api/v1/response-rules", headers=admin).json()["version"] == 2


def test_invalid_documents_name_the_path_and_change_nothing(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    good = client.get("/api/v1/response-rules", headers=admin).json()
    cases = []
    bad = copy.deepcopy(good)
    bad["levels"]["II"]["ack_window_seconds"] = -5
    cases.append((bad, "levels.II.ack_window_seconds"))
    bad = copy.deepcopy(good)
    bad["levels"]["I"]["must_acknowledge"] = ["street", "province"]
    cases.append((bad, "levels.I.must_acknowledge.1"))
    bad = copy.deepcopy(good)
    del bad["levels"]["III"]
    cases.append((bad, "levels"))
    for document, path in cases:
        r = client.put("/api/v1/response-rules", json=document, headers=admin)
        assert r.status_code == 422, r.text
        assert path in [e["field"] for e in r.json()["errors"]], r.json()
    assert client.get("/api/v1/response-rules", headers=admin).json()["version"] == 1


def test_only_city_admins_replace_the_rules(client: TestClient, session: Session, clock: ManualClock) -> None:
    district_admin = signed_in(client, session, clock, unit="110106", roles=["admin"])
    rules = client.get("/api/v1/response-rules", headers=district_admin).json()
    assert client.put("/api/v1/response-rules", json=rules, headers=district_admin).status_code == 403
    officer = signed_in(client, session, clock, unit="110000", roles=["duty_officer"])
    assert client.put("/api/v1/response-rules", json=rules, headers=officer).status_code == 403
