"""Statistics per child unit: found, closed, closure rate, overdue, major, listed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.clock import ManualClock
from tests.hazards.helpers import DISTRICT, OTHER_STREET, STREET, create, photo, team


def test_stats_per_child_unit(client: TestClient, session: Session, clock: ManualClock) -> None:
    t = team(client, session, clock)
    a = create(client, t["inspector"], clock)  # major, street 1
    create(client, t["inspector"], clock, level="general", basis="", deadline="2026-04-19")
    create(client, t["other_inspector"], clock, unit_code=OTHER_STREET, level="general", basis="")
    create(client, t["city_admin"], clock, unit_code=DISTRICT, level="general", basis="")  # the district itself
    plan = {"measures": "m", "person": "p"}
    client.post(f"/api/v1/hazards/{a['id']}/plan", json=plan, headers=t["inspector"])
    photo(client, t["inspector"], a["id"])
    client.post(f"/api/v1/hazards/{a['id']}/submit", headers=t["inspector"])
    r = client.post(f"/api/v1/hazards/{a['id']}/verify", json={"passed": True}, headers=t["district_leader"])
    assert r.status_code == 200, r.text
    clock.advance(days=2)  # the general hazard due 04-19 is overdue now

    r = client.get(f"/api/v1/hazards/stats?unit={DISTRICT}", headers=t["district_leader"])
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {row["unit_code"]: row for row in body["rows"]}
    assert len(rows) == 1 + 26  # 本级 + the district's streets
    street = rows[STREET]
    assert (street["found"], street["closed"], street["closure_rate"], street["overdue"], street["major"]) == (
        2, 1, 0.5, 1, 1,
    )  # fmt: skip
    assert rows[OTHER_STREET]["found"] == 1 and rows[OTHER_STREET]["closure_rate"] == 0.0
    assert rows[DISTRICT]["unit_name"].endswith("（本级）") and rows[DISTRICT]["found"] == 1
    assert rows["110106003"]["found"] == 0 and rows["110106003"]["closure_rate"] is None
    assert body["total"]["found"] == 4 and body["total"]["closed"] == 1 and body["total"]["overdue"] == 1

    city = client.get("/api/v1/hazards/stats", headers=t["city_admin"]).json()
    assert len(city["rows"]) == 16
    assert {r["unit_code"]: r["found"] for r in city["rows"]}[DISTRICT] == 4
    period = client.get(f"/api/v1/hazards/stats?unit={DISTRICT}&from=2026-04-19&to=2026-04-30", headers=t["city_admin"])
    assert period.json()["total"]["found"] == 0
    assert client.get(f"/api/v1/hazards/stats?unit={DISTRICT}&from=2026-04-19&to=2026-04-01",
                      headers=t["city_admin"]).status_code == 422  # fmt: skip
    mine = client.get("/api/v1/hazards/stats", headers=t["inspector"]).json()
    assert [r["unit_code"] for r in mine["rows"]] == [STREET]
    assert client.get(f"/api/v1/hazards/stats?unit={DISTRICT}", headers=t["inspector"]).status_code == 403
