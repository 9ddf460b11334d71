"""The incident's overall state tells the truth: never acknowledged while a required tier still owes its sign-off,
and a tier whose chain ran out is marked passed over (越级)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.incidents.models import IncidentTier, Status
from app.incidents.states import OverallState, TierStatus, overall_state, tier_status, was_passed_over
from tests.incidents.helpers import fire, key_for, signed_in_as, staff_chain, tick

NOW = datetime(2026, 4, 18, 4, 0, tzinfo=UTC)
CHAIN = ("street", "district", "city")


def _row(
    tier: str, *, required: bool = True, acked: bool = False, step: int = 0, informed: bool = False
) -> IncidentTier:
    return IncidentTier(
        incident_id=1, tier=tier, unit_id=1, required=required, informed=informed, step=step,
        acknowledged_at=NOW if acked else None,
    )  # fmt: skip


def test_the_overall_state_is_acknowledged_only_when_every_required_tier_is() -> None:
    street, district, city = _row("street"), _row("district"), _row("city", required=False, informed=True)
    assert overall_state(Status.reported, [street, district, city]) == OverallState.pending
    street.acknowledged_at = NOW
    # The status says acknowledged from the first sign-off; the overall state does not.
    assert overall_state(Status.acknowledged, [street, district, city]) == OverallState.partial
    district.acknowledged_at = NOW
    assert overall_state(Status.acknowledged, [street, district, city]) == OverallState.acknowledged
    assert overall_state(Status.responding, [street, _row("district", step=3)]) == OverallState.partial
    assert overall_state(Status.resolved, [street, district]) == OverallState.resolved
    assert overall_state(Status.closed, [_row("street")]) == OverallState.closed


def test_a_tier_whose_chain_ran_out_is_passed_over_but_the_city_never_is() -> None:
    assert tier_status(_row("street", step=1), CHAIN) == TierStatus.paging
    assert tier_status(_row("street", step=2), CHAIN) == TierStatus.passed_over
    assert tier_status(_row("street", step=2, acked=True), CHAIN) == TierStatus.acknowledged
    assert tier_status(_row("city", step=4), CHAIN) == TierStatus.paging  # the top repeats its own pages
    assert tier_status(_row("district", step=2), ("street", "district")) == TierStatus.paging  # nothing above
    assert tier_status(_row("city", required=False, informed=True), CHAIN) == TierStatus.informed
    assert tier_status(_row("city", required=False), CHAIN) == TierStatus.idle
    # The review counts a tier passed over even when it signed later; its state then is acknowledged.
    assert was_passed_over(_row("street", step=2, acked=True), CHAIN)
    assert not was_passed_over(_row("street", step=1), CHAIN) and not was_passed_over(_row("city", step=3), CHAIN)


def test_the_api_says_partial_while_the_district_is_still_paged(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    assert inc["ack_state"] == "pending"
    tick(engine, clock)
    street = signed_in_as(client, staff("street", "duty_officer"))
    assert client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=street).status_code == 200
    body = client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()
    assert body["status"] == "acknowledged"  # the lifecycle's status is unchanged (the contract)
    assert body["ack_state"] == "partial"
    assert {t["tier"]: t["state"] for t in body["tiers"]}["district"] == "paging"
    district = signed_in_as(client, staff("district", "leader"))
    assert client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=district).status_code == 200
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()["ack_state"] == "acknowledged"


def test_a_street_that_never_answers_is_passed_over_in_the_api(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    tick(engine, clock)
    district = signed_in_as(client, staff("district", "duty_officer"))
    assert client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=district).status_code == 200
    for _ in range(2):
        clock.advance(minutes=5)
        tick(engine, clock)
    body = client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()
    tiers = {t["tier"]: t for t in body["tiers"]}
    assert tiers["street"]["passed_over"] is True and tiers["street"]["state"] == "paging"
    assert tiers["district"]["passed_over"] is False and tiers["district"]["state"] == "acknowledged"
    assert body["ack_state"] == "partial"  # the street still owes its sign-off
