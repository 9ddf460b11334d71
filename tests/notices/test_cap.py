"""CAP 1.2 in: a rainstorm red warning for 门头沟区 and 房山区, its update and its cancellation; hostile and
invalid alerts refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from app.clock import ManualClock
from app.escalation import jobs
from app.escalation.models import Chase
from app.notices.models import CapMessage, Notice, NoticeReceipt
from app.notify.models import OutboxMessage
from tests.duty import children, staff, warning_key
from tests.incidents.helpers import key_for

SAMPLES = Path(__file__).parent / "samples"
CAP = {"Content-Type": "application/cap+xml"}
MENTOUGOU, FANGSHAN = "110109", "110111"


def sample(name: str) -> bytes:
    return (SAMPLES / f"rainstorm-red-{name}.xml").read_bytes()


def _counts(session: Session) -> tuple[int, int, int, int]:
    session.commit()
    notices, receipts, messages, outbox = (
        session.exec(select(func.count()).select_from(t)).one()
        for t in (Notice, NoticeReceipt, CapMessage, OutboxMessage)
    )
    return notices, receipts, messages, outbox


def test_alert_update_cancel_and_a_repeat(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    streets = children(session, MENTOUGOU) + children(session, FANGSHAN)
    staff(session, clock, [MENTOUGOU, FANGSHAN, *streets], roles=("duty_officer",))
    key = warning_key(session, clock)
    r = client.post("/api/v1/warnings/cap", content=sample("alert"), headers=key | CAP)
    assert r.status_code == 201, r.text
    notice = r.json()
    assert notice["kind"] == "warning" and notice["color"] == "red" and notice["sign_within_seconds"] == 900
    assert notice["title"] == "北京市气象台发布暴雨红色预警信号" and notice["unit_code"] == "110000"
    assert "150毫米" in notice["body"] and "立即撤离" in notice["body"]
    assert {x["unit_code"] for x in notice["receipts"]} == {MENTOUGOU, FANGSHAN, *streets}
    assert len(streets) == 41 and notice["summary"]["units"] == 43
    jobs.run_tick(engine, clock=clock)
    session.commit()
    pages = session.exec(select(OutboxMessage).where(OutboxMessage.incident_code == notice["code"])).all()
    assert len(pages) == 43 and all(p.body.startswith("【红色预警】北京市：") for p in pages)
    before = _counts(session)

    # The same identifier again: 200, the same notice, nothing written.
    again = client.post("/api/v1/warnings/cap", content=sample("alert"), headers=key | CAP)
    assert again.status_code == 200 and again.json()["id"] == notice["id"]
    assert _counts(session) == before

    clock.advance(hours=6)
    upd = client.post(
        "/api/v1/warnings/cap", content=sample("update"), headers=key | {"Content-Type": "application/xml"}
    )
    assert upd.status_code == 200, upd.text
    amended = upd.json()
    assert amended["id"] == notice["id"] and amended["version"] == 2
    assert amended["title"] == "北京市气象台更新暴雨红色预警信号" and "400毫米" in amended["body"]
    assert amended["summary"]["pending"] == 43  # everyone signs the new version
    jobs.run_tick(engine, clock=clock)
    session.commit()
    updates = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.incident_code == notice["code"], OutboxMessage.template == "notice_update"
        )
    ).all()
    assert len(updates) == 43 and "重新签收" in updates[0].body

    clock.advance(hours=33)
    cancel = client.post("/api/v1/warnings/cap", content=sample("cancel"), headers=key | CAP)
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["status"] == "cancelled"
    session.commit()
    open_chases = session.exec(
        select(Chase).where(col(Chase.kind).in_(["notice", "notice_update"]), Chase.status == "open")
    )
    assert open_chases.all() == []
    told = session.exec(select(OutboxMessage).where(OutboxMessage.template == "notice_cancel")).all()
    assert len(told) == 43 and "已解除" in told[0].body
    assert client.post("/api/v1/warnings/cap", content=sample("cancel"), headers=key | CAP).status_code == 200
    assert _counts(session)[2] == 3


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&c;</identifier></alert>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://127.0.0.1:9/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>"""


def _swap(old: bytes, new: bytes) -> bytes:
    raw = sample("alert")
    assert old in raw
    return raw.replace(old, new)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"this is not xml", 422, "alert"),
        (b"", 422, "alert"),
        (_swap(b"urn:oasis:names:tc:emergency:cap:1.2", b"urn:oasis:names:tc:emergency:cap:1.1"), 422, "alert"),
        (_swap(b"<sender>11000041600000</sender>", b""), 422, "alert.sender"),
        (_swap(b"<severity>Extreme</severity>", b"<severity>Terrible</severity>"), 422, "alert.info.severity"),
        (_swap(b"<severity>Extreme</severity>", b"<severity>Unknown</severity>"), 422, "alert.info.severity"),
        (_swap(b"<value>110111</value>", b"<value>110199</value>"), 422, "alert.info.area.geocode"),
        (_swap(b"<value>110111</value>", b"<value>abc</value>"), 422, "alert.info.area[1].geocode.value"),
        (_swap(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>"), 422, "alert.references"),
        (_swap(b"<status>Actual</status>", b"<status>Test</status>"), 422, "alert.status"),
        (BILLION_LAUGHS, 400, "alert"),
        (EXTERNAL_ENTITY, 400, "alert"),
        (EXTERNAL_DTD, 400, "alert"),
        (_swap(b"<description>", b"<description>" + "雨".encode() * 100_000), 413, None),
    ],
)
def test_invalid_and_hostile_alerts_write_nothing(
    client: TestClient, session: Session, clock: ManualClock, body: bytes, status: int, field: str | None
) -> None:
    key = warning_key(session, clock)
    r = client.post("/api/v1/warnings/cap", content=body, headers=key | CAP)
    assert r.status_code == status, r.text
    if field is not None:
        assert field in [e["field"] for e in r.json()["errors"]], r.json()
    assert _counts(session) == (0, 0, 0, 0)


def test_only_a_key_with_warnings_write_posts_alerts(client: TestClient, session: Session, clock: ManualClock) -> None:
    fire = key_for(session, clock, "119")
    assert client.post("/api/v1/warnings/cap", content=sample("alert"), headers=fire | CAP).status_code == 403
    assert client.post("/api/v1/warnings/cap", content=sample("alert"), headers=CAP).status_code == 401
    # An early-warning system scoped to another district may not warn 门头沟区 and 房山区.
    from app.auth import api_keys
    from tests.factories import make_agency

    agency = make_agency(session, clock, code="cyqx", kind="other", unit="110105")
    scoped = {"X-API-Key": api_keys.create(session, clock=clock, agency=agency, scopes=["warnings:write"]).key}
    session.commit()
    assert client.post("/api/v1/warnings/cap", content=sample("alert"), headers=scoped | CAP).status_code == 403
    assert _counts(session) == (0, 0, 0, 0)
