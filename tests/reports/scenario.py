"""A scripted month in 丰台区 (November 2026, Asia/Shanghai), driven through the API and the real tick on a
ManualClock, whose accountability figures the tests work out by hand.

Streets S1 (右安门街道, 110106001) and S2 (110106002) and the district and the city are staffed around the clock;
the district's other streets are not (their roll-call posts are vacant).

- A, S1, level IV, Nov 1 00:30 local (still October in UTC): street acks after 120 s, district after 240 s; first
  and final reports on time.
- B, S1, level IV, Nov 9 10:00: the street's officer and leader stay silent, so at +10 min the district is told
  (the street is passed over, 越级); the district acks at +6 min (360 s), the street's leader at +12 min (720 s).
  No first report within 6 h (marked late), filed at +7 h (late); the follow-up due 24 h later is missed (marked
  late) and the final report comes at +32 h (late).
- C, S2, level III (3 deaths), Nov 16 14:00: street acks after 60 s, district after 180 s; the city is informed only.
- D, S1, Dec 1 00:30 local: outside the month.
- A roll-call of the district's streets (duty officers), Nov 20 03:00: S1 answers, S2 misses, the rest are vacant.
- A notice from the district to S1 and S2, Nov 21 09:00, 30 min to sign, feedback within 4 h: S1 signs after
  10 min and feeds back after 1 h; S2 signs after 40 min (late) and never feeds back (late).
- Hazards: S1 found Nov 5, deadline Nov 10, still open (overdue); S2 found Nov 22, closed the same day; S1 found
  Oct 25 (outside the month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from tests.conftest import SHANGHAI
from tests.duty import children, follow_up
from tests.factories import login, make_person
from tests.hazards.helpers import hazard_body, photo
from tests.incidents.helpers import fire, key_for, staff_chain

DISTRICT, S1, S2, CITY = "110106", "110106001", "110106002", "110000"


@dataclass
class Month:
    streets: list[str]
    incidents: dict[str, int]


def _at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201)), r.text
    return r.json()


def scripted_month(client: TestClient, session: Session, clock: ManualClock, engine: Engine) -> Month:
    clock.set(_at(1, 0, 0))
    staff_chain(session, clock)
    staff_chain(session, clock, {"street": S2})
    inspector1 = make_person(session, clock, unit=S1, roles=["inspector"], username="rp.inspector1")
    inspector2 = make_person(session, clock, unit=S2, roles=["inspector"], username="rp.inspector2")
    key = key_for(session, clock, "119-rp")

    def as_(username: str) -> dict[str, str]:
        return login(client, username)

    def incident(external_id: str, unit: str, **extra: Any) -> int:
        body = fire(external_id=external_id, unit_code=unit, occurred_at=clock.now().isoformat(), **extra)
        return int(_ok(client.post("/api/v1/incidents", json=body, headers=key))["id"])

    def ack(iid: int, username: str) -> None:
        _ok(client.post(f"/api/v1/incidents/{iid}/ack", headers=as_(username)), 200)

    def report(iid: int, kind: str) -> None:
        _ok(client.post(f"/api/v1/incidents/{iid}/reports", json={"kind": kind, "text": f"{kind}报告"}, headers=key))

    def advance(**delta: float) -> None:
        clock.advance(timedelta(**delta))
        follow_up(engine, clock)

    ids: dict[str, int] = {}
    # A: answered at once by both tiers.
    clock.set(_at(1, 0, 30))
    ids["A"] = a = incident("rp-A", S1)
    follow_up(engine, clock)
    advance(seconds=120)
    ack(a, f"street.duty_officer.{S1}")
    advance(seconds=120)
    ack(a, f"district.duty_officer.{DISTRICT}")
    advance(minutes=56)
    report(a, "first")
    report(a, "final")

    # B: the street is passed over; every report is late.
    clock.set(_at(9, 10, 0))
    ids["B"] = b = incident("rp-B", S1)
    follow_up(engine, clock)
    advance(minutes=5)  # the street's and the district's leaders are paged
    advance(minutes=1)
    ack(b, f"district.duty_officer.{DISTRICT}")
    advance(minutes=4)  # +10 min: the street's chain ran out, the district is told
    advance(minutes=2)
    ack(b, f"street.leader.{S1}")
    advance(hours=6, minutes=-12, seconds=1)  # the first report's deadline (6 h) has passed: marked late
    advance(minutes=59, seconds=59)  # +7 h
    report(b, "first")
    advance(hours=24, seconds=1)  # the follow-up's deadline (24 h) has passed: marked late
    advance(minutes=59, seconds=59)  # +32 h
    report(b, "final")

    # C: level III in S2, quickly answered.
    clock.set(_at(16, 14, 0))
    ids["C"] = c = incident("rp-C", S2, casualties={"deaths": 3, "injuries": 0, "trapped": 0, "missing": 0})
    follow_up(engine, clock)
    advance(seconds=60)
    ack(c, f"street.duty_officer.{S2}")
    advance(seconds=120)
    ack(c, f"district.duty_officer.{DISTRICT}")
    advance(minutes=10)
    report(c, "first")
    report(c, "final")

    # The roll-call of the district's streets at 03:00: S1 answers, S2 does not.
    clock.set(_at(20, 3, 0))
    district_officer = as_(f"district.duty_officer.{DISTRICT}")
    rc = _ok(client.post("/api/v1/roll-calls", json={"scope": "children", "roles": ["duty_officer"]},
                         headers=district_officer))  # fmt: skip
    follow_up(engine, clock)
    advance(minutes=1)
    _ok(client.post(f"/api/v1/roll-calls/{rc['id']}/answer", json={}, headers=as_(f"street.duty_officer.{S1}")), 200)
    advance(minutes=5)  # S2's window has passed: missed

    # The notice: S1 on time, S2 late and without feedback.
    clock.set(_at(21, 9, 0))
    notice = _ok(
        client.post(
            "/api/v1/notices",
            json={"title": "关于加强冬季防火检查的通知", "body": "请各街道立即部署。", "to": {"units": [S1, S2]},
                  "sign_within_seconds": 1800, "feedback_due_at": (clock.now() + timedelta(hours=4)).isoformat()},
            headers=as_(f"district.duty_officer.{DISTRICT}"),
        )
    )  # fmt: skip
    follow_up(engine, clock)
    advance(minutes=10)
    _ok(client.post(f"/api/v1/notices/{notice['id']}/sign", headers=as_(f"street.duty_officer.{S1}")), 200)
    advance(minutes=30)  # +40 min: S2's deadline has passed
    _ok(client.post(f"/api/v1/notices/{notice['id']}/sign", headers=as_(f"street.duty_officer.{S2}")), 200)
    advance(minutes=20)
    _ok(client.post(f"/api/v1/notices/{notice['id']}/feedback", json={"text": "已部署"},
                    headers=as_(f"street.duty_officer.{S1}")), 200)  # fmt: skip
    advance(hours=4)  # the feedback deadline has passed

    # Hazards.
    clock.set(_at(22, 10, 0))
    h1 = as_(inspector1.username or "")
    _ok(client.post("/api/v1/hazards", json=hazard_body(clock, unit_code=S1, level="general", basis="",
        found_at=_at(5, 9).isoformat(), deadline="2026-11-10"), headers=h1))  # fmt: skip
    _ok(client.post("/api/v1/hazards", json=hazard_body(clock, unit_code=S1, level="general", basis="",
        found_at=_at(25, 9, month=10).isoformat(), deadline="2026-12-30"), headers=h1))  # fmt: skip
    h2 = as_(inspector2.username or "")
    closed = _ok(client.post("/api/v1/hazards", json=hazard_body(clock, unit_code=S2, level="general", basis="",
                 deadline="2026-12-20"), headers=h2))  # fmt: skip
    plan = {"measures": "清理通道", "person": "王院长"}
    _ok(client.post(f"/api/v1/hazards/{closed['id']}/plan", json=plan, headers=h2), 200)
    assert photo(client, h2, closed["id"]).status_code == 201
    _ok(client.post(f"/api/v1/hazards/{closed['id']}/submit", json={}, headers=h2), 200)
    _ok(client.post(f"/api/v1/hazards/{closed['id']}/verify", json={"passed": True},
                    headers=as_(f"street.leader.{S2}")), 200)  # fmt: skip
    follow_up(engine, clock)

    # D: December, outside the month.
    clock.set(_at(1, 0, 30, month=12))
    ids["D"] = d = incident("rp-D", S1)
    follow_up(engine, clock)
    advance(seconds=30)
    ack(d, f"street.duty_officer.{S1}")
    clock.set(_at(1, 1, 0, month=12))
    session.commit()
    return Month(streets=children(session, DISTRICT), incidents=ids)
