from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.clock import ManualClock
from app.errors import Invalid
from app.org import units
from app.org.models import Unit
from tests.factories import signed_in


def test_fengtai_has_26_streets(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110106001", roles=["viewer"])
    r = client.get("/api/v1/units", params={"tier": "street", "parent": "110106"}, headers=headers)
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 26
    assert all(u["tier"] == "street" and u["parent_code"] == "110106" for u in items)
    assert "右安门街道" in {u["name"] for u in items}


def test_tiers_of_beijing(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["viewer"])
    counts = {
        t: client.get("/api/v1/units", params={"tier": t}, headers=headers).json()["total"]
        for t in ("city", "district", "street")
    }
    assert counts == {"city": 1, "district": 16, "street": 343}


def test_unit_detail_has_parent_chain(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["viewer"])
    r = client.get("/api/v1/units/110106001", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert [u["code"] for u in body["chain"]] == ["110000", "110106"]
    assert body["tier"] == "street" and body["parent_code"] == "110106"
    district = client.get("/api/v1/units/110106", headers=headers).json()
    assert district["children_count"] == 26


def test_unknown_unit_is_404_in_the_error_shape(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["viewer"])
    r = client.get("/api/v1/units/119999", headers=headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found" and "119999" in r.json()["message"]
    r = client.get("/api/v1/units", params={"parent": "119999"}, headers=headers)
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "parent"
    r = client.get("/api/v1/units", params={"tier": "province"}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tier"


def test_units_need_a_principal(client: TestClient) -> None:
    r = client.get("/api/v1/units")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"


def test_loading_twice_keeps_ids_and_changes_nothing(session: Session) -> None:
    before = {u.code: u.id for u in session.exec(select(Unit)).all()}
    result = units.load_units(session, units.read_units_file(units.default_data_path()))
    session.commit()
    assert (result.created, result.updated, result.unchanged) == (0, 0, 360)
    assert {u.code: u.id for u in session.exec(select(Unit)).all()} == before


def test_reloading_a_renamed_unit_updates_it_in_place(session: Session, tmp_path: Path) -> None:
    document = json.loads(units.default_data_path().read_text(encoding="utf-8"))
    original_id = units.get(session, "110106001").id
    for row in document["units"]:
        if row["code"] == "110106001":
            row["name"] = "右安门街道(改名)"
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    try:
        result = units.load_units(session, units.read_units_file(changed))
        session.commit()
        assert (result.created, result.updated) == (0, 1)
        unit = units.get(session, "110106001")
        assert unit.id == original_id and unit.name == "右安门街道(改名)"
    finally:
        units.load_units(session, units.read_units_file(units.default_data_path()))
        session.commit()


def test_a_bad_units_file_names_the_row_and_loads_nothing(session: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "units": [
                    {"code": "120000", "parent": None, "name": "天津市", "tier": "city"},
                    {"code": "120101", "parent": "129999", "name": "和平区", "tier": "district"},
                ]
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(Invalid) as caught:
        units.load_units(session, units.read_units_file(bad))
    session.rollback()
    assert caught.value.fields[0].field == "units[1].parent"
    assert session.exec(select(Unit).where(Unit.code == "120000")).first() is None


def test_shipped_data_keeps_its_provenance() -> None:
    document = json.loads(units.default_data_path().read_text(encoding="utf-8"))
    assert document["metadata"]["authority"].startswith("Ministry of Civil Affairs")
    assert document["metadata"]["source_sha256"]
