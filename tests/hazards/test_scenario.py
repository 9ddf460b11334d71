"""Issue 16's scenario with the controlled clock: an inspector of 右安门街道 reports a major fire hazard at a hospital
due in 7 days; reminders at 3 days and 1 day; nobody acts; the street leader is paged the day after, the district 3
days later; the district lists it; a rectification is submitted with an after photo; the first verification fails,
the second closes it; the statistics show it at each step. Every SMS is accounted for: none that nobody expected."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.escalation import jobs
from app.notify.models import OutboxMessage
from tests.hazards.helpers import DISTRICT, STREET, clock_zone, hazard_body, image_bytes, photo, team
from tests.incidents.helpers import staff_chain

RESPONSIBLE = "+8613800138000"


class Phones:
    """The SMS written to the outbox since the last look, as (phone, text)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seen = 0

    def new(self) -> list[tuple[str, str]]:
        self.session.commit()
        rows = self.session.exec(
            select(OutboxMessage).where(col(OutboxMessage.id) > self.seen).order_by(col(OutboxMessage.id))
        ).all()
        if rows:
            self.seen = rows[-1].id or self.seen
        return [(m.recipient, m.body) for m in rows if m.channel == "sms"]


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00").replace(tzinfo=clock_zone())


def test_a_major_hospital_hazard_chased_listed_rectified_and_closed(
    client: TestClient, engine: Engine, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)  # duty officers and leaders on duty at the street, the district, the city
    t = team(client, session, clock)
    phones = Phones(session)
    phone = {f"{tier}.{role}": staff(tier, role).phone for tier in ("street", "district", "city")
             for role in ("duty_officer", "leader")}  # fmt: skip

    def tick_at(when: datetime) -> list[tuple[str, str]]:
        clock.set(when)
        jobs.run_tick(engine, clock=clock)
        return phones.new()

    def stats(unit: str = DISTRICT) -> dict[str, Any]:
        r = client.get(f"/api/v1/hazards/stats?unit={unit}", headers=t["district_leader"])
        assert r.status_code == 200, r.text
        row: dict[str, Any] = next(x for x in r.json()["rows"] if x["unit_code"] == STREET)
        return {k: row[k] for k in ("found", "closed", "closure_rate", "overdue", "major", "listed")}

    def timeline() -> list[str]:
        body = client.get(f"/api/v1/hazards/{hid}", headers=t["district_leader"]).json()
        return [e["kind"] for e in body["timeline"]]

    # 2026-04-18 12:00: reported, due 04-25.
    r = client.post("/api/v1/hazards", json=hazard_body(clock, venue_category="hospital"), headers=t["inspector"])
    assert r.status_code == 201, r.text
    hid, code = r.json()["id"], r.json()["code"]
    assert r.json()["deadline"] == "2026-04-25"
    assert tick_at(clock.now()) == []  # nothing is due yet
    assert stats() == {"found": 1, "closed": 0, "closure_rate": 0.0, "overdue": 0, "major": 1, "listed": 0}

    # Reminders at 3 days and 1 day before, 09:00: the responsible party and the street's duty officer.
    assert tick_at(at("2026-04-22", 8, 59)) == []
    sent = tick_at(at("2026-04-22"))
    assert sorted(p for p, _ in sent) == sorted([phone["street.duty_officer"], RESPONSIBLE])
    assert all(code in text and "还有3天" in text for _, text in sent)
    assert tick_at(at("2026-04-23")) == []
    sent = tick_at(at("2026-04-24"))
    assert sorted(p for p, _ in sent) == sorted([phone["street.duty_officer"], RESPONSIBLE])
    assert all("还有1天" in text for _, text in sent)
    assert tick_at(at("2026-04-25", 23, 59)) == []
    assert stats()["overdue"] == 0

    # Nobody acts. The day after the deadline: the street's leader.
    clock.set(at("2026-04-26", 0, 1))
    assert stats()["overdue"] == 1
    assert tick_at(at("2026-04-26", 8, 59)) == []
    sent = tick_at(at("2026-04-26"))
    assert sent == [(phone["street.leader"], sent[0][1])] and "逾期" in sent[0][1] and code in sent[0][1]
    assert tick_at(at("2026-04-28")) == []

    # Three days later: the district.
    sent = tick_at(at("2026-04-29"))
    assert [p for p, _ in sent] == [phone["district.duty_officer"]]
    assert "督办" in sent[0][1] and "右安门街道" in sent[0][1]

    # The district lists it for supervision (挂牌督办).
    r = client.post(f"/api/v1/hazards/{hid}/listing", json={"tier": "district", "reason": "医院重大火灾隐患逾期未改"},
                    headers=t["district_leader"])  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["listed_tier"] == "district" and r.json()["listed_unit_code"] == DISTRICT
    assert stats() == {"found": 1, "closed": 0, "closure_rate": 0.0, "overdue": 1, "major": 1, "listed": 1}

    # The rectification: a plan, an after photo, submitted. The chase stops.
    clock.set(at("2026-04-30", 10))
    plan = {"measures": "清理疏散通道,更换防火门闭门器", "funds_cny": 18000, "person": "王院长"}
    assert client.post(f"/api/v1/hazards/{hid}/plan", json=plan, headers=t["inspector"]).status_code == 200
    assert photo(client, t["inspector"], hid, phase="after", data=image_bytes()).status_code == 201
    r = client.post(f"/api/v1/hazards/{hid}/submit", json={"note": "已整改"}, headers=t["inspector"])
    assert r.status_code == 200 and r.json()["status"] == "submitted"
    assert stats()["overdue"] == 0
    assert tick_at(at("2026-05-02")) == []  # the city would have been next; submitted, nobody is paged

    # The first verification (by the tier above: the district) fails: back to rectifying, the chase resumes.
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": False, "note": "闭门器仍不能自动关闭"},
                    headers=t["district_leader"])  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "rectifying"
    assert stats()["overdue"] == 1
    sent = tick_at(clock.now() + timedelta(seconds=1))
    assert [p for p, _ in sent] == [phone["street.leader"]]  # still overdue: its leader hears at once

    # Fixed again, submitted again, and the second verification closes it (销号).
    clock.advance(hours=3)
    assert photo(client, t["inspector"], hid, phase="after", data=image_bytes("PNG")).status_code == 201
    assert client.post(f"/api/v1/hazards/{hid}/submit", headers=t["inspector"]).status_code == 200
    r = client.post(f"/api/v1/hazards/{hid}/verify", json={"passed": True, "note": "复查合格"},
                    headers=t["district_leader"])  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert stats() == {"found": 1, "closed": 1, "closure_rate": 1.0, "overdue": 0, "major": 1, "listed": 1}
    assert tick_at(at("2026-05-10")) == []  # closed: nothing more, ever

    kinds = timeline()
    assert kinds[0] == "reported"
    assert kinds.count("reminder") == 4  # two steps, each to the duty officer and the responsible party
    assert kinds.count("overdue") == 2 and kinds.count("escalated") == 1
    for kind in ("listed", "plan", "photo", "submitted", "verify_failed", "closed"):
        assert kind in kinds, kind
    audit = client.get(f"/api/v1/audit?object_type=hazard&object_id={hid}", headers=t["city_admin"]).json()
    actions = [e["action"] for e in reversed(audit["items"])]
    assert actions == ["hazard.create", "hazard.listing", "hazard.plan", "hazard.photo", "hazard.submit",
                       "hazard.verify", "hazard.photo", "hazard.submit", "hazard.verify"]  # fmt: skip
