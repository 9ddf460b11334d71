"""Intake validation, scope, lifecycle and the other incident endpoints."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.incidents.models import Incident
from app.org.models import Agency
from tests.factories import signed_in
from tests.incidents.helpers import fire, key_for, pages, signed_in_as, staff_chain, tick


def count(session: Session) -> int:
    session.commit()  # a fresh snapshot: SQLite in WAL mode reads one snapshot per transaction
    return session.exec(select(func.count()).select_from(Incident)).one()


def test_bad_intake_is_a_clear_4xx_and_writes_nothing(client: TestClient, session: Session, clock: ManualClock) -> None:
    key = key_for(session, clock, "119")
    cases = [
        (fire(surprise=1), 422, "surprise"),
        (fire(category="meteor"), 422, "category"),
        (fire(occurred_at="2026-04-18T12:50:00"), 422, "occurred_at"),
        (fire(casualties={"deaths": -1}), 422, "casualties.deaths"),
        (fire(location={"lat": 200, "lon": 0}), 422, "location.lat"),
        (fire(severity="V"), 422, "severity"),
        (fire(unit_code="110106999"), 404, "unit_code"),
        (fire(unit_code="110000"), 422, "unit_code"),
        (fire(economic_loss_cny=-3), 422, "economic_loss_cny"),
    ]
    for body, status, field in cases:
        r = client.post("/api/v1/incidents", json=body, headers=key)
        assert r.status_code == status, (field, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())
    assert count(session) == 0


def test_scope_of_intake(client: TestClient, session: Session, clock: ManualClock) -> None:
    fengtai_gas = key_for(session, clock, "ft-gas", kind="gas", unit="110106")
    assert client.post("/api/v1/incidents", json=fire(unit_code="110105001"), headers=fengtai_gas).status_code == 403
    read_only = key_for(session, clock, "ro", scopes=["incidents:read"])
    assert client.post("/api/v1/incidents", json=fire(), headers=read_only).status_code == 403
    chaoyang_officer = signed_in(client, session, clock, unit="110105", roles=["duty_officer"])
    assert client.post("/api/v1/incidents", json=fire(), headers=chaoyang_officer).status_code == 403
    assert count(session) == 0
    assert client.post("/api/v1/incidents", json=fire(), headers=fengtai_gas).status_code == 201


def test_a_duty_officer_enters_an_incident_taken_by_phone(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    officer = signed_in_as(client, staff("district", "duty_officer"))
    r = client.post("/api/v1/incidents", json=fire(external_id=None), headers=officer)
    assert r.status_code == 201
    assert r.json()["source"] == f"person:{staff('district', 'duty_officer').id}"


def test_reads_are_scoped(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff_chain(session, clock)
    fire_key = key_for(session, clock, "119")
    police_key = key_for(session, clock, "110", kind="police")
    health_key = key_for(session, clock, "health", kind="health")
    inc = client.post("/api/v1/incidents", json=fire(), headers=fire_key).json()  # a hospital fire
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=fire_key).status_code == 200
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=health_key).status_code == 200  # routed to health
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=police_key).status_code == 404
    assert client.get("/api/v1/incidents", headers=police_key).json()["total"] == 0
    chaoyang = signed_in(client, session, clock, unit="110105", roles=["viewer"])
    assert client.get(f"/api/v1/incidents/{inc['id']}", headers=chaoyang).status_code == 404
    city = signed_in(client, session, clock, unit="110000", roles=["viewer"])
    assert client.get("/api/v1/incidents", params={"status": "reported"}, headers=city).json()["total"] == 1
    assert client.get("/api/v1/incidents", params={"severity": "I"}, headers=city).json()["total"] == 0
    assert client.get("/api/v1/incidents", params={"since": "bad"}, headers=city).status_code == 422


def test_lifecycle_resolve_close_and_manual_severity(client: TestClient, session: Session, clock: ManualClock) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post(
        "/api/v1/incidents",
        json=fire(casualties={"deaths": 12, "injuries": 0, "trapped": 0, "missing": 0}),
        headers=key,
    ).json()
    assert inc["severity"] == "II"
    leader = signed_in_as(client, staff("district", "leader"))
    officer = signed_in_as(client, staff("district", "duty_officer"))
    # Lowering is a leader's act with a reason; a duty officer may not.
    assert (
        client.post(
            f"/api/v1/incidents/{inc['id']}/severity", json={"severity": "III", "reason": "核实"}, headers=officer
        ).status_code
        == 403
    )
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/severity", json={"severity": "III", "reason": "核实后降级"}, headers=leader
    )
    assert r.status_code == 200 and r.json()["severity"] == "III"
    assert (
        client.post(f"/api/v1/incidents/{inc['id']}/close", json={"reason": "完毕"}, headers=leader).status_code == 409
    )
    r = client.post(f"/api/v1/incidents/{inc['id']}/resolve", json={"reason": "明火扑灭"}, headers=leader)
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert all(t["next_step_at"] is None for t in r.json()["tiers"])
    client.post(f"/api/v1/incidents/{inc['id']}/reports", json={"kind": "final", "text": "终报"}, headers=key)
    r = client.post(f"/api/v1/incidents/{inc['id']}/close", json={"reason": "结案"}, headers=leader)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert (
        client.post(
            f"/api/v1/incidents/{inc['id']}/reports", json={"kind": "follow_up", "text": "x"}, headers=key
        ).status_code
        == 409
    )
    assert client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=officer).status_code == 409


def test_the_timeline_names_its_actors_as_a_duty_officer_reads_them(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    agency = session.exec(select(Agency).where(Agency.code == "119")).one()
    agency.name = "市消防救援总队119指挥中心"
    session.add(agency)
    session.commit()
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    again = {k: v for k, v in fire().items() if k != "casualties"} | {"casualties": {"deaths": 1}}
    assert client.post("/api/v1/incidents", json=again, headers=key).status_code == 200
    leader = staff("district", "leader")
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/severity",
        json={"severity": "III", "reason": "核实后升级"},
        headers=signed_in_as(client, leader),
    )
    assert r.status_code == 200, r.text
    entries = {e["kind"]: e for e in client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()["timeline"]}
    assert entries["reported"]["message"].startswith("市消防救援总队119指挥中心报告")
    assert entries["updated"]["message"].startswith("市消防救援总队119指挥中心更新")
    assert entries["regraded"]["message"].startswith(f"丰台区 {leader.name}将等级由")
    # The machine-readable actor is kept as it was.
    assert entries["reported"]["actor"] == "agency:119"
    assert entries["regraded"]["actor"] == f"person:{leader.id}:{leader.username}"


def test_manual_escalation_needs_a_reason_and_pages_the_tier_above(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    officer = signed_in_as(client, staff("district", "duty_officer"))
    assert client.post(f"/api/v1/incidents/{inc['id']}/escalate", json={}, headers=officer).status_code == 422
    r = client.post(f"/api/v1/incidents/{inc['id']}/escalate", json={"reason": "火势扩大"}, headers=officer)
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "city" and r.json()["required"] is True and r.json()["state"] == "paging"
    assert [m for m in pages(session, inc["id"]) if m.tier == "city"] == []  # the tick pages, at once
    tick(engine, clock)
    assert staff("city", "duty_officer").id in [m.person_id for m in pages(session, inc["id"]) if m.tier == "city"]


def test_notifications_list_every_page_with_its_status(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = client.post("/api/v1/incidents", json=fire(), headers=key).json()
    tick(engine, clock)
    r = client.get(f"/api/v1/incidents/{inc['id']}/notifications", headers=key)
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 2 and {i["status"] for i in items} == {"queued"}
    assert {
        "channel",
        "to",
        "person_id",
        "tier",
        "step",
        "status",
        "attempts",
        "provider_id",
        "created_at",
        "sent_at",
        "error",
    } <= set(items[0])


def test_heartbeat_missed_pages_the_city_duty_officer_once(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    from tests.incidents.helpers import tick

    staff = staff_chain(session, clock)
    key = key_for(session, clock, "120", kind="ambulance")
    r = client.post("/api/v1/heartbeats/cad-120", json={"interval_seconds": 60}, headers=key)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    clock.advance(seconds=61)
    tick(engine, clock)
    tick(engine, clock)
    from app.notify.models import OutboxMessage

    session.commit()  # a fresh snapshot: SQLite in WAL mode reads one snapshot per transaction
    alerts = session.exec(select(OutboxMessage).where(OutboxMessage.template == "heartbeat_missed")).all()
    assert [a.person_id for a in alerts] == [staff("city", "duty_officer").id]
    client.post("/api/v1/heartbeats/cad-120", json={"interval_seconds": 60}, headers=key)
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    actions = [
        e["action"]
        for e in client.get("/api/v1/audit", params={"object_type": "heartbeat"}, headers=admin).json()["items"]
    ]
    assert actions == ["heartbeat.recovered", "heartbeat.missed", "heartbeat.create"]


def test_metrics_count_incidents_and_queued_pages(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff_chain(session, clock)
    key = key_for(session, clock, "119")
    client.post("/api/v1/incidents", json=fire(), headers=key)
    tick(engine, clock)
    clock.advance(seconds=90)
    text = client.get("/metrics").text
    assert 'dutyline_incidents{severity="IV",status="reported"} 1.0' in text
    assert 'dutyline_messages{channel="sms",status="queued"} 2.0' in text
    assert "dutyline_dispatch_queue_depth 2.0" in text
    assert "dutyline_dispatch_oldest_queued_seconds 90.0" in text
    assert "dutyline_escalation_lateness_seconds_bucket" in text
