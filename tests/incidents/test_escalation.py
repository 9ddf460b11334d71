"""Scenario tests with a controlled clock: intake, paging, escalation past whoever does not answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from app.clock import ManualClock
from app.escalation import jobs, steps
from app.incidents import codes, timeline
from app.incidents.models import Incident, IncidentTier
from app.runtime.scheduler import Ticker
from tests.incidents.helpers import fire, in_transaction, key_for, paged, pages, signed_in_as, staff_chain, tick


def test_a_street_duty_officer_who_never_answers_is_passed_over(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    r = client.post("/api/v1/incidents", json=fire(), headers=key)
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["severity"] == "IV" and inc["lead_tier"] == "district" and inc["status"] == "reported"
    assert {t["tier"]: t["required"] for t in inc["tiers"]} == {"street": True, "district": True, "city": False}
    assert {t["tier"]: t["state"] for t in inc["tiers"]} == {"street": "paging", "district": "paging", "city": "idle"}
    assert len(inc["code"]) == 4
    assert pages(session, inc["id"]) == []  # the 201 pages nobody: the tick does, woken by the commit
    assert tick(engine, clock).steps == 2
    # Level IV: each required tier's duty officer first, nobody else.
    assert paged(session, staff, inc["id"]) == [("street", "duty_officer"), ("district", "duty_officer")]

    clock.advance(seconds=299)
    assert tick(engine, clock).steps == 0
    clock.advance(seconds=1)
    assert tick(engine, clock).steps == 2
    assert paged(session, staff, inc["id"])[2:] == [
        ("street", "leader"),
        ("street", "duty_officer"),
        ("district", "leader"),
        ("district", "duty_officer"),
    ]
    clock.advance(minutes=5)
    tick(engine, clock)
    # The street has not answered: the district is told; the district has not either: the city is told.
    later = paged(session, staff, inc["id"])[6:]
    assert ("district", "duty_officer") in later and ("city", "duty_officer") in later
    detail = client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()
    city = next(t for t in detail["tiers"] if t["tier"] == "city")
    assert city["required"] is True and city["next_step_at"] is not None
    assert [e["kind"] for e in detail["timeline"]].count("escalated") >= 2


def test_an_ack_at_the_district_stops_the_district_chain_only(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    tick(engine, clock)
    district_officer = signed_in_as(client, staff("district", "duty_officer"))
    r = client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=district_officer)
    assert r.status_code == 200, r.text
    tiers = {t["tier"]: t for t in r.json()["tiers"]}
    assert tiers["district"]["acknowledged_by"]["id"] == staff("district", "duty_officer").id
    assert tiers["district"]["next_step_at"] is None and tiers["street"]["next_step_at"] is not None
    assert r.json()["status"] == "acknowledged"
    before = len(pages(session, inc["id"]))
    clock.advance(minutes=5)
    tick(engine, clock)
    new = [staff.tier_of(m.person_id) for m in pages(session, inc["id"])[before:]]
    assert new == [("street", "leader"), ("street", "duty_officer")]
    # Acknowledging twice changes nothing; someone from another tier or district cannot acknowledge.
    assert client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=district_officer).status_code == 200
    city_officer = signed_in_as(client, staff("city", "duty_officer"))
    assert client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=city_officer).status_code == 403


def test_raising_deaths_in_a_follow_up_makes_the_city_required_at_once(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post(
        "/api/v1/incidents", json=fire(casualties={"deaths": 2, "injuries": 0, "trapped": 0, "missing": 0}), headers=key
    ).json()
    assert inc["severity"] == "IV"
    tick(engine, clock)
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/reports",
        headers=key,
        json={
            "kind": "first",
            "text": "死亡人数上升",
            "casualties": {"deaths": 12, "injuries": 3, "trapped": 0, "missing": 0},
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["severity"] == "II" and body["lead_tier"] == "city" and body["status"] == "responding"
    assert next(t for t in body["tiers"] if t["tier"] == "city")["required"] is True
    assert tick(engine, clock).steps == 1  # the city's first step; the leaders' pages are notices
    # The street and the district were waiting on their duty officers: level II pages their leaders at once,
    # and their duty officers are texted the new level.
    later = [(staff.tier_of(m.person_id), m.template) for m in pages(session, inc["id"]) if m.tier != "city"][2:]
    assert sorted(later) == [
        (("district", "duty_officer"), "incident_regraded"),
        (("district", "leader"), "incident_page"),
        (("street", "duty_officer"), "incident_regraded"),
        (("street", "leader"), "incident_page"),
    ]
    city_pages = [staff.tier_of(m.person_id) for m in pages(session, inc["id"]) if m.tier == "city"]
    # Level II: the city's duty officer and leader at once; the leader also by phone.
    assert sorted(city_pages) == [("city", "duty_officer"), ("city", "leader")]
    voice = sorted(m.person_id or 0 for m in pages(session, inc["id"], "voice"))
    assert voice == sorted(staff(t, "leader").id or 0 for t in ("street", "district", "city"))
    assert any(e["kind"] == "regraded" for e in body["timeline"])
    # Lowering figures later never lowers the level automatically.
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/reports",
        headers=key,
        json={
            "kind": "follow_up",
            "text": "核减",
            "casualties": {"deaths": 1, "injuries": 0, "trapped": 0, "missing": 0},
        },
    )
    assert r.json()["severity"] == "II"


def test_level_iii_pages_leaders_at_once_and_informs_the_city(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post(
        "/api/v1/incidents", json=fire(casualties={"deaths": 3, "injuries": 0, "trapped": 0, "missing": 0}), headers=key
    ).json()
    assert inc["severity"] == "III"
    tiers = {t["tier"]: t for t in inc["tiers"]}
    assert tiers["city"]["informed"] is True and tiers["city"]["required"] is False
    assert tiers["city"]["state"] == "informed"
    tick(engine, clock)
    assert sorted(paged(session, staff, inc["id"])) == sorted(
        [
            ("street", "duty_officer"),
            ("street", "leader"),
            ("district", "duty_officer"),
            ("district", "leader"),
            ("city", "duty_officer"),
        ]
    )


def test_a_vacant_post_is_skipped_at_once_and_recorded(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock, chain={"district": "110106", "city": "110000"})
    key = key_for(session, clock, "119")
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    tick(engine, clock)
    # Nobody is rostered at the street: its duty officer and leader are skipped and the district is told at once.
    detail = client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds.count("vacant") == 2 and "escalated" in kinds
    street = next(t for t in detail["tiers"] if t["tier"] == "street")
    assert street["step"] == 2 and street["next_step_at"] is None
    assert ("district", "duty_officer") in paged(session, staff, inc["id"])


def test_report_deadline_missed_pages_the_tier_above_and_says_late(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post(
        "/api/v1/incidents", json=fire(casualties={"deaths": 3, "injuries": 0, "trapped": 0, "missing": 0}), headers=key
    ).json()
    tick(engine, clock)
    district_officer = signed_in_as(client, staff("district", "duty_officer"))
    street_officer = signed_in_as(client, staff("street", "duty_officer"))
    client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=district_officer)
    client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=street_officer)
    clock.advance(minutes=61)  # level III: the district's first report is due within 60 minutes
    tick(engine, clock)
    detail = client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()
    # 迟报 first, then the page it caused (written with the tick batch's rows, after the entry made before it).
    assert [e["kind"] for e in detail["timeline"]][-2:] == ["late", "page"]
    assert "市" in detail["timeline"][-1]["message"]
    overdue = [m for m in pages(session, inc["id"]) if m.template == "report_overdue"]
    assert [m.person_id for m in overdue] == [staff("city", "duty_officer").id]
    tick(engine, clock)  # a second tick does not page again
    assert len([m for m in pages(session, inc["id"]) if m.template == "report_overdue"]) == 1
    district_officer = signed_in_as(client, staff("district", "duty_officer"))  # the old token has expired
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/reports", headers=district_officer, json={"kind": "first", "text": "首报"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["reports"][0]["late"] is True


def test_repeat_external_id_is_the_same_incident(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff_chain(session, clock)
    key = key_for(session, clock, "119")
    first = client.post("/api/v1/incidents", json=fire(), headers=key)
    same = client.post("/api/v1/incidents", json=fire(), headers=key)
    assert first.status_code == 201 and same.status_code == 200
    assert same.json()["id"] == first.json()["id"]
    detail = client.get(f"/api/v1/incidents/{first.json()['id']}", headers=key).json()
    assert [e["kind"] for e in detail["timeline"]].count("updated") == 0  # nothing changed, nothing recorded
    changed = client.post(
        "/api/v1/incidents",
        json=fire(casualties={"deaths": 0, "injuries": 12, "trapped": 1, "missing": 0}),
        headers=key,
    )
    assert changed.status_code == 200 and changed.json()["severity"] == "III"
    detail = client.get(f"/api/v1/incidents/{first.json()['id']}", headers=key).json()
    assert [e["kind"] for e in detail["timeline"]].count("updated") == 1
    listing = client.get("/api/v1/incidents", headers=key).json()
    assert listing["total"] == 1


def test_concurrent_repeats_make_one_incident(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff_chain(session, clock)
    key = key_for(session, clock, "119")
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: client.post("/api/v1/incidents", json=fire(), headers=key), range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert client.get("/api/v1/incidents", headers=key).json()["total"] == 1


def test_a_short_code_already_taken_is_drawn_again(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff_chain(session, clock)
    key = key_for(session, clock, "119")
    drawn = iter(["K7K7", "K7K7", "K7K7", "M3M3"])
    monkeypatch.setattr(codes, "new_code", lambda: next(drawn))
    first = client.post("/api/v1/incidents", json=fire(external_id="a"), headers=key)
    second = client.post("/api/v1/incidents", json=fire(external_id="b"), headers=key)
    assert first.status_code == 201 and second.status_code == 201, second.text
    assert (first.json()["code"], second.json()["code"]) == ("K7K7", "M3M3")
    assert next(drawn, None) is None  # the second intake drew twice more: one collision, then a free code
    tick(engine, clock)
    # The collision left the second incident whole: its tiers, its first page and its timeline.
    detail = client.get(f"/api/v1/incidents/{second.json()['id']}", headers=key).json()
    assert [t["tier"] for t in detail["tiers"]] == ["street", "district", "city"]
    assert [e["kind"] for e in detail["timeline"]][:2] == ["reported", "page"]
    assert client.get("/api/v1/incidents", headers=key).json()["total"] == 2


def test_a_batch_writes_each_page_once_and_keeps_the_timeline_in_order(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    incident_id = client.post("/api/v1/incidents", json=fire(), headers=key).json()["id"]
    tick(engine, clock)
    before = pages(session, incident_id)
    with in_transaction(engine) as s:
        inc = s.get(Incident, incident_id)
        assert inc is not None
        batch = timeline.Batch(s)
        ctx = steps.load_contexts(s, clock, [inc], batch=batch)[incident_id]
        query = select(IncidentTier).where(IncidentTier.incident_id == incident_id, IncidentTier.tier == "street")
        street = s.exec(query).one()
        ctx.note(kind="test", message="before")
        # Step 0's page once more: its dedup key exists, so no row and no timeline entry.
        steps.page(ctx, street, role=steps.DUTY_OFFICER, template="incident_page")
        # The same new page twice in one batch: one row, one entry.
        for _ in range(2):
            steps.page(ctx, street, role=steps.LEADER, template="incident_reminder", notice="again")
        ctx.note(kind="test", message="after")
        batch.flush()
    after = pages(session, incident_id)
    assert [m.person_id for m in after[len(before) :]] == [staff("street", "leader").id]
    assert after[-1].dedup_key.endswith(":again:leader:" + str(staff("street", "leader").id) + ":sms")
    detail = client.get(f"/api/v1/incidents/{incident_id}", headers=key).json()
    tail = [(e["kind"], e["message"]) for e in detail["timeline"]][-3:]
    assert [kind for kind, _ in tail] == ["test", "page", "test"]
    assert tail[0][1] == "before" and tail[2][1] == "after"
    assert staff("street", "leader").name in tail[1][1]


def test_two_ticks_at_once_take_each_step_exactly_once(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    ids = [
        client.post("/api/v1/incidents", json=fire(external_id=f"e{i}"), headers=key).json()["id"] for i in range(12)
    ]

    def two_at_once() -> int:
        barrier = threading.Barrier(2)

        def run() -> int:
            barrier.wait()
            return tick(engine, clock).steps

        with ThreadPoolExecutor(max_workers=2) as pool:
            return sum(pool.map(lambda _: run(), range(2)))

    assert two_at_once() == 24  # the intakes' first steps: street and district of each incident, once
    assert all(len(paged(session, staff, i)) == 2 for i in ids)
    clock.advance(minutes=5)
    assert two_at_once() == 24  # the second steps, once
    for incident_id in ids:
        who = paged(session, staff, incident_id)
        assert len(who) == 6
        assert sorted(who[2:]) == sorted(
            [("street", "leader"), ("street", "duty_officer"), ("district", "leader"), ("district", "duty_officer")]
        )


def test_the_ticker_asks_to_wake_when_the_next_step_falls_due(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff_chain(session, clock)
    key = key_for(session, clock, "119")
    ticker = Ticker(engine, clock, interval=1.0)
    assert ticker.run() is None  # nothing is waiting
    assert client.post("/api/v1/incidents", json=fire(), headers=key).status_code == 201
    assert ticker.run() is None  # the first step is a whole window (300 s) away: the interval will do
    clock.advance(seconds=299.6)
    wait = ticker.run()
    assert wait is not None and abs(wait - 0.4) < 1e-6  # wake exactly when the step falls due
    clock.advance(seconds=0.4)
    assert tick(engine, clock).steps == 2
    clock.advance(seconds=299.99)
    assert ticker.run() == Ticker.MIN_GAP  # never sooner than the minimum gap


def test_wakes_close_together_are_gathered_into_one_run(engine: Engine, clock: ManualClock) -> None:
    """Under a steady intake every commit wakes the ticker: wakes within the gather window share one run."""
    ticker = Ticker(engine, clock, interval=60.0)
    runs: list[float] = []
    original = ticker.run

    def counted() -> float | None:
        runs.append(time.monotonic())
        return original()

    ticker.run = counted  # type: ignore[method-assign]
    ticker.start()
    try:
        time.sleep(0.2)  # its first run (nothing due) is over
        before = len(runs)
        started = time.monotonic()
        wakes = 0
        while time.monotonic() - started < 0.4:  # a commit every 4 ms, as at 250 intakes a second
            ticker.wake()
            wakes += 1
            time.sleep(0.004)
        time.sleep(0.2)
        woken_runs = len(runs) - before
    finally:
        ticker.shutdown()
    assert woken_runs >= 1  # the wakes were acted on
    # At most one run per gather window (plus the one in progress when the wakes began), not one per wake.
    assert woken_runs <= 0.6 / Ticker.GATHER + 1 < wakes


def test_a_tick_that_finds_nothing_due_costs_five_statements_and_knows_the_next_timer(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    """Every intake's commit wakes the tick, so a run that finds nothing is the common case under a steady load:
    its claims (tier rows, overdue reports, heartbeats, chases) and one look-up of the earliest waiting timer."""
    staff_chain(session, clock)
    r = client.post("/api/v1/incidents", json=fire(), headers=key_for(session, clock, "119"))
    assert r.status_code == 201, r.text
    assert tick(engine, clock).steps == 2
    clock.advance(seconds=10)
    with Session(engine) as s:
        waiting = [t.next_step_at for t in s.exec(select(IncidentTier)).all() if t.next_step_at is not None]
    statements: list[str] = []
    me = threading.get_ident()

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        # The SQLite engine begins its write transactions with a BEGIN of its own: not a query of the tick's.
        if threading.get_ident() == me and not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        result = jobs.run_tick(engine, clock=clock)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result.steps == 0 and len(statements) == 5
    # The next timer is the earliest tier step waiting, read back as an aware UTC time on every database.
    assert result.next_due == min(waiting) and result.next_due.tzinfo is not None
