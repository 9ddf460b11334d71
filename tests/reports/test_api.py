"""The report's API: scope (a principal reads only its own subtree), bad input (422 naming the field, nothing
else), an unknown unit (404), a street's own report, and reading from the replica when DATABASE_READ_URL is set."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app import migrate
from app.clock import ManualClock
from app.config import Settings
from app.db import make_engine
from app.main import create_app
from app.org import units
from tests.factories import signed_in
from tests.incidents.helpers import fire, key_for

URL = "/api/v1/reports/accountability"
DISTRICT, STREET = "110106", "110106001"


def test_a_street_reads_its_own_report_and_not_its_districts(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    street = signed_in(client, session, clock, unit=STREET, roles=["duty_officer"])
    r = client.get(URL, params={"unit": DISTRICT}, headers=street)
    assert r.status_code == 403, r.text
    assert "outside the scope" in r.json()["message"]
    own = client.get(URL, headers=street)
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["unit_code"] == STREET and [row["unit_code"] for row in body["rows"]] == [STREET]
    assert body["rows"][0]["own"] is True
    # The default period is this local month.
    assert (body["from"], body["to"]) == ("2026-04-01", "2026-05-01")
    # The sibling district is outside a district admin's scope; an inspector has no reports at all.
    other = signed_in(client, session, clock, unit="110105", roles=["unit_admin"])
    assert client.get(URL, params={"unit": DISTRICT}, headers=other).status_code == 403
    inspector = signed_in(client, session, clock, unit=STREET, roles=["inspector"])
    assert client.get(URL, params={"unit": STREET}, headers=inspector).status_code == 403
    key = key_for(session, clock, "rp-key")
    assert client.get(URL, params={"unit": STREET}, headers=key).status_code == 403
    assert client.get(URL, params={"unit": STREET}).status_code == 401


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"unit": DISTRICT, "from": "2026-13-01", "to": "2026-12-01"}, 422, "from"),
        ({"unit": DISTRICT, "from": "2026-11-01", "to": "tomorrow"}, 422, "to"),
        ({"unit": DISTRICT, "from": "2026-11-01", "to": "2026-11-01"}, 422, "to"),
        ({"unit": DISTRICT, "from": "2026-11-01", "to": "2026-10-01"}, 422, "to"),
        ({"unit": DISTRICT, "from": "2025-01-01", "to": "2026-12-01"}, 422, "to"),
        ({"unit": DISTRICT, "from": "2026-11-01"}, 422, "to"),
        ({"unit": DISTRICT, "to": "2026-11-01"}, 422, "from"),
        ({"unit": "fengtai"}, 422, "unit"),
        ({"unit": DISTRICT, "format": "pdf"}, 422, "format"),
        ({"unit": "999999"}, 404, "unit"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    client: TestClient, session: Session, clock: ManualClock, params: dict[str, str], status: int, field: str
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.get(URL, params=params, headers=admin)
    assert r.status_code == status, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_reports_read_the_replica_when_one_is_set(
    client: TestClient, session: Session, clock: ManualClock, settings: Settings, tmp_path: Path, engine: Engine
) -> None:
    """A replica that has not received the incident yet answers without it: the report read the replica."""
    key = key_for(session, clock, "rp-replica")
    assert client.post("/api/v1/incidents", json=fire(external_id="rp-r1"), headers=key).status_code == 201
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    main = client.get(URL, params={"unit": DISTRICT}, headers=admin).json()
    assert main["total"]["incidents"]["total"] == 1

    replica_url = f"sqlite:///{tmp_path / 'replica.db'}"
    migrate.upgrade(replica_url)
    replica = make_engine(replica_url)
    with Session(replica) as s:
        units.load_units(s, units.read_units_file(units.default_data_path()))
        s.commit()
    replica.dispose()
    with_replica = settings.model_copy(update={"database_read_url": replica_url})
    with TestClient(create_app(with_replica, engine=engine, clock=clock)) as other:
        r = other.get(URL, params={"unit": DISTRICT}, headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["total"]["incidents"]["total"] == 0
        assert [row["unit_code"] for row in r.json()["rows"]][:1] == [STREET]


def test_things_placed_at_the_district_itself_have_their_own_row(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    key = key_for(session, clock, "rp-own")
    for n, unit in enumerate((DISTRICT, DISTRICT, STREET)):
        body = fire(external_id=f"rp-own-{n}", unit_code=unit)
        assert client.post("/api/v1/incidents", json=body, headers=key).status_code == 201
    admin = signed_in(client, session, clock, unit=DISTRICT, roles=["unit_admin"])
    body = client.get(URL, params={"unit": DISTRICT}, headers=admin).json()
    own = body["rows"][0]
    assert (own["unit_code"], own["own"], own["unit_name"]) == (DISTRICT, True, "丰台区（本级）")
    assert own["incidents"]["total"] == 2 and own["tiers"]["street"]["required"] == 0
    assert own["tiers"]["district"]["required"] == 2
    street = next(r for r in body["rows"] if r["unit_code"] == STREET)
    assert street["incidents"]["total"] == 1 and street["own"] is False
    assert body["total"]["incidents"]["total"] == 3
    # The city's row for 丰台区 holds all three.
    city = signed_in(client, session, clock, unit="110000", roles=["viewer"])
    by_city = client.get(URL, params={"unit": "110000"}, headers=city).json()
    assert [r["own"] for r in by_city["rows"]] == [False] * 16
    assert next(r for r in by_city["rows"] if r["unit_code"] == DISTRICT)["incidents"]["total"] == 3
