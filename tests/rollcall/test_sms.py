"""Answering a roll-call and signing a notice from the phone: `1 <code>`, plain `1`, and what is not theirs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from app.clock import ManualClock
from app.db import transaction
from app.escalation import jobs
from app.notify import inbound
from app.rollcall.models import RollCallEntry
from tests.duty import staff
from tests.notify.conftest import Phone, Service

DISTRICT, STREET, OTHER = "110106", "110106001", "110106002"


def _district(http: httpx.Client) -> dict[str, str]:
    """The district duty officer's bearer header (the one who calls the roll and issues the notice)."""
    token = http.post(
        "/api/v1/auth/token", data={"username": f"duty_officer.{DISTRICT}", "password": "Correct-horse-9"}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_posts_answer_the_roll_by_sms(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET, OTHER], roles=("duty_officer",), login={DISTRICT})
    with httpx.Client(base_url=service.url) as http:
        auth = _district(http)
        rc = http.post("/api/v1/roll-calls", json={"roles": ["duty_officer"]}, headers=auth).json()
        code = rc["code"]
        jobs.run_tick(engine, clock=clock)
        street = phone(posts(STREET).phone).expect_sms("【查岗】", f"回复 1 {code} 确认在岗")
        other = phone(posts(OTHER).phone).expect_sms("【查岗】", code)
        street.reply(f"1 {code.lower()}").expect_sms(f"已确认在岗 {code}")
        other.reply("1").expect_sms(f"已确认在岗 {code}")  # plain 1: the newest pending page
        other.reply("1").expect_sms("没有待签收")
        phone(posts(DISTRICT).phone).reply(f"1 {code}").expect_sms("未找到", code)  # the caller holds no entry
        detail = http.get(f"/api/v1/roll-calls/{rc['id']}", headers=auth).json()
    states = {
        (e["unit_code"], e["state"], e["channel"]) for e in detail["entries"] if e["unit_code"] in (STREET, OTHER)
    }
    assert states == {(STREET, "answered", "sms"), (OTHER, "answered", "sms")}


def test_a_street_signs_a_notice_by_sms(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET], roles=("duty_officer",), login={DISTRICT})
    with httpx.Client(base_url=service.url) as http:
        auth = _district(http)
        body = {"title": "防汛通知", "body": "请做好准备", "to": {"units": [STREET]}, "sign_within_seconds": 600}
        notice = http.post("/api/v1/notices", json=body, headers=auth).json()
        code = notice["code"]
        jobs.run_tick(engine, clock=clock)
        street = phone(posts(STREET).phone).expect_sms("【通知】", "防汛通知", f"回复 1 {code} 签收")
        street.reply(f"1 {code}").expect_sms(f"已签收 {code}")
        street.reply(f"1 {code}").expect_sms("未找到", code)  # already signed: nothing pending under that code
        detail = http.get(f"/api/v1/notices/{notice['id']}", headers=auth).json()
    receipt = detail["receipts"][0]
    assert receipt["state"] == "signed" and receipt["signed_via"] == "sms"
    assert receipt["signed_by"]["id"] == posts(STREET).id


# The statements one SMS answer to a roll-call takes in our process (718 answers at once must be recorded within 10 s,
# issue 15): the page, its chase, the entry (locked once), the roll-call, the person, the unit, and the writes.
ANSWER_STATEMENTS = 12


def test_an_answer_by_sms_takes_a_fixed_small_number_of_statements(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET, OTHER], roles=("duty_officer",), login={DISTRICT})
    with httpx.Client(base_url=service.url) as http:
        rc = http.post("/api/v1/roll-calls", json={"roles": ["duty_officer"]}, headers=_district(http)).json()
    jobs.run_tick(engine, clock=clock)
    phone(posts(STREET).phone).expect_sms("【查岗】", rc["code"])
    phone(posts(OTHER).phone).expect_sms("【查岗】", rc["code"])
    session.commit()
    seen: list[str] = []

    here = threading.get_ident()

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if threading.get_ident() == here:  # not the live service's threads (a delivery receipt may come meanwhile)
            seen.append(statement)

    # In this thread, through the app's own acknowledger: only this answer's statements are counted.
    event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(engine) as answering:  # the unit of work the webhook's request uses
            outcome, text = inbound.handle_sms(
                answering,
                clock=clock,
                acknowledger=service.app.state.acknowledger,
                phone=posts(STREET).phone,
                body=f"1 {rc['code']}",
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert outcome is not None and outcome.ok and rc["code"] in text
    writes = [s.split()[0] for s in seen if s.split()[0] in ("INSERT", "UPDATE")]
    assert sorted(writes) == ["INSERT", "INSERT", "UPDATE", "UPDATE", "UPDATE"], seen
    assert len([s for s in seen if not s.startswith(("BEGIN", "COMMIT"))]) <= ANSWER_STATEMENTS, seen
    with Session(engine) as check:
        mine = check.exec(
            select(RollCallEntry).where(
                RollCallEntry.roll_call_id == rc["id"], RollCallEntry.unit_id == posts(STREET).unit_id
            )
        ).one()
    assert (mine.state, mine.channel) == ("answered", "sms")
