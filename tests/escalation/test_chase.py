"""The generic chase: a post owes an answer; the ladder, vacant posts falling through, the admins, answers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.db import transaction
from app.escalation import chase, jobs, wake
from app.escalation.models import Chase, ChaseEvent
from app.incidents import acks
from app.notify import inbound, outbox, templates
from app.notify.models import OutboxMessage
from app.org import units
from app.org.models import Person, Unit
from tests.factories import make_person
from tests.incidents.helpers import Staff, staff_chain

ANSWERED: set[str] = set()


def _answered(_session: Session, chases: Sequence[Chase]) -> set[int]:
    return {c.id for c in chases if c.subject in ANSWERED and c.id is not None}


@pytest.fixture
def kind(monkeypatch: pytest.MonkeyPatch) -> chase.Kind:
    monkeypatch.setitem(templates.TEMPLATES, "t_post", "【点名】{unit}{role}请答复:{title}")
    monkeypatch.setitem(templates.TEMPLATES, "t_leader", "【点名未答】{unit}{role}{minutes}分钟未答复:{title}")
    monkeypatch.setitem(templates.TEMPLATES, "t_above", "【点名未答】{unit}未答复,请{to_unit}督促:{title}")
    ANSWERED.clear()
    return chase.register(
        chase.Kind(
            name="test_rollcall",
            dedup_prefix="trc",
            templates=chase.Templates(post="t_post", leader="t_leader", above="t_above"),
            answered=_answered,
        )
    )


def start(
    engine: Engine,
    clock: ManualClock,
    kind: chase.Kind,
    subject: str = "1",
    *,
    unit: str = "110106001",
    at: datetime | None = None,
    page_post: bool = True,
    code: str | None = None,
) -> None:
    with transaction(engine) as s:
        chase.start(
            s,
            clock=clock,
            kind=kind,
            subject=subject,
            unit=units.get(s, unit),
            role="duty_officer",
            params={"title": "汛期点名"},
            window=timedelta(minutes=5),
            at=at,
            page_post=page_post,
            code=code,
        )


def sent(session: Session, prefix: str = "trc:") -> list[OutboxMessage]:
    session.commit()
    query = select(OutboxMessage).where(col(OutboxMessage.dedup_key).startswith(prefix)).order_by(col(OutboxMessage.id))
    return list(session.exec(query).all())


def who(session: Session, staff: Staff) -> list[tuple[str, str]]:
    return [staff.tier_of(m.person_id) for m in sent(session)]


def rows(session: Session) -> list[Chase]:
    session.commit()
    session.expire_all()
    return list(session.exec(select(Chase).order_by(col(Chase.id))).all())


def events(session: Session) -> list[str]:
    session.commit()
    return [e.kind for e in session.exec(select(ChaseEvent).order_by(col(ChaseEvent.id))).all()]


def test_the_ladder_climbs_one_rung_per_window_up_to_the_citys_leader(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    staff = staff_chain(session, clock)
    start(engine, clock, kind)
    assert sent(session) == []  # the tick pages, not the caller
    jobs.run_tick(engine, clock=clock)
    assert who(session, staff) == [("street", "duty_officer")]
    assert sent(session)[0].body == "【点名】右安门街道值班员请答复:汛期点名"
    clock.advance(minutes=4, seconds=59)
    jobs.run_tick(engine, clock=clock)
    assert len(sent(session)) == 1
    expected = [("street", "leader"), ("district", "duty_officer"), ("district", "leader"), ("city", "duty_officer"),
                ("city", "leader")]  # fmt: skip
    for n, rung in enumerate(expected, start=2):
        clock.advance(minutes=5)
        assert jobs.run_tick(engine, clock=clock).chase_steps == 1
        assert who(session, staff)[-1] == rung and len(sent(session)) == n
    assert sent(session)[1].template == "t_leader" and sent(session)[2].template == "t_above"
    clock.advance(minutes=5)
    jobs.run_tick(engine, clock=clock)
    row = rows(session)[0]
    assert row.status == "exhausted" and row.next_step_at is None and row.paged == 6
    clock.advance(minutes=5)
    assert jobs.run_tick(engine, clock=clock).chase_steps == 0 and len(sent(session)) == 6


def test_an_answer_stops_the_chase_pushed_or_pulled(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    staff = staff_chain(session, clock)
    start(engine, clock, kind, subject="pushed")
    start(engine, clock, kind, subject="pulled")
    start(engine, clock, kind, subject="pulled")  # a repeat changes nothing
    jobs.run_tick(engine, clock=clock)
    assert len(sent(session)) == 2
    with transaction(engine) as s:
        assert chase.answer(s, clock=clock, kind=kind, subject="pushed", by="person:1") is True
        assert chase.answer(s, clock=clock, kind=kind, subject="pushed", by="person:1") is False
    ANSWERED.add("pulled")
    clock.advance(minutes=5)
    result = jobs.run_tick(engine, clock=clock)
    assert result.chase_steps == 0
    assert len(sent(session)) == 2 and who(session, staff) == [("street", "duty_officer")] * 2
    statuses = {c.subject: (c.status, c.answered_by) for c in rows(session)}
    assert statuses == {"pushed": ("answered", "person:1"), "pulled": ("answered", "kind:test_rollcall")}


def test_an_answer_is_recorded_with_the_name_of_who_answered(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    staff = staff_chain(session, clock)
    officer = staff("street", "duty_officer")
    start(engine, clock, kind)
    jobs.run_tick(engine, clock=clock)
    with transaction(engine) as s:
        assert chase.answer(s, clock=clock, kind=kind, subject="1", by=f"person:{officer.id}") is True
    session.commit()
    answered = session.exec(select(ChaseEvent).where(ChaseEvent.kind == "answered")).one()
    assert answered.message == f"右安门街道 {officer.name}已答复"
    assert answered.data == {"by": f"person:{officer.id}"}


def test_a_vacant_post_falls_through_at_once_and_is_recorded(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    # Nobody at the street: its duty officer and leader are vacant; the district's duty officer is paged at once.
    staff = staff_chain(session, clock, chain={"district": "110106", "city": "110000"})
    start(engine, clock, kind)
    jobs.run_tick(engine, clock=clock)
    assert who(session, staff) == [("district", "duty_officer")]
    assert events(session) == ["vacant", "vacant", "page"]
    assert sent(session)[0].template == "t_above"


def test_a_post_due_later_that_was_asked_already_starts_at_the_leader(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    staff = staff_chain(session, clock)
    start(engine, clock, kind, at=clock.now() + timedelta(hours=1), page_post=False)
    assert jobs.run_tick(engine, clock=clock).chase_steps == 0
    clock.advance(hours=1)
    jobs.run_tick(engine, clock=clock)
    assert who(session, staff) == [("street", "leader")]


def test_a_wholly_vacant_ladder_tells_every_admin_of_the_unit_and_above(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    street_admin = make_person(session, clock, unit="110106001", roles=["unit_admin"])
    city_admin = make_person(session, clock, unit="110000", roles=["admin"])
    make_person(session, clock, unit="110105", roles=["admin"])  # another district: not above the post
    make_person(session, clock, unit="110106001", roles=["viewer"])
    start(engine, clock, kind)
    jobs.run_tick(engine, clock=clock)
    pages = sent(session)
    assert [m.person_id for m in pages] == [city_admin.id, street_admin.id]
    assert all(m.template == "post_all_vacant" for m in pages)
    assert pages[0].body.startswith("【全线空岗】右安门街道值班员及以上各级值守岗位均无人，转告管理员：【点名】")
    assert events(session) == ["vacant"] * 6 + ["all_vacant", "page", "page"]
    assert rows(session)[0].status == "all_vacant"


def test_admins_over_their_sms_budget_are_told_in_the_console_not_by_the_posts_call(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    """Found by the full fuzz drill: a kind that calls (a roll-call) sent the admin of a wholly vacant ladder its
    post's voice text, which needs parameters the admins' telling has not, and every tick failed from then on."""
    from app.notify import budget

    voiced = replace(kind.templates, voice="voice_rollcall")
    calling = chase.register(replace(kind, name="test_calls", templates=voiced))
    admin = make_person(session, clock, unit="110000", roles=["admin"])
    before = budget._daily
    budget.set_daily_budget(1)
    try:
        with transaction(engine) as s:  # the admin's one SMS of the day has gone already
            outbox.enqueue(s, outbox.message(clock=clock, channel="sms", to=admin.phone, template="ack_confirmed",
                                             params={"code": "X1"}, dedup_key="earlier"))  # fmt: skip
        start(engine, clock, calling)
        jobs.run_tick(engine, clock=clock)  # raised Invalid (voice_rollcall needs caller, name) before
    finally:
        budget.set_daily_budget(before)
    assert [m.template for m in sent(session) if m.person_id == admin.id] == []
    assert rows(session)[0].status == "all_vacant"
    assert "page_held" in events(session)


def test_a_one_shot_alert_pages_in_the_callers_transaction_once(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    staff = staff_chain(session, clock, chain={"district": "110106", "city": "110000"})
    for _ in range(2):
        with transaction(engine) as s:
            unit = units.get(s, "110106001")
            chase.alert(s, clock=clock, kind=kind, subject="once", unit=unit, role="leader", params={"title": "x"})
    assert who(session, staff) == [("district", "duty_officer")]
    row = rows(session)[0]
    assert row.status == "done" and row.next_step_at is None


def test_a_chase_due_now_wakes_the_tick_at_its_commit_only(
    clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    woken = threading.Event()
    wake.add_listener(woken.set)
    try:
        s = Session(engine)
        chase.start(s, clock=clock, kind=kind, subject="rolled-back", unit=units.get(s, "110106001"),
                    role="duty_officer", params={"title": "x"}, window=None)  # fmt: skip
        s.rollback()
        s.close()
        assert not woken.is_set()
        start(engine, clock, kind, subject="later", at=clock.now() + timedelta(minutes=1))
        assert not woken.is_set()
        start(engine, clock, kind, subject="now")
        assert woken.is_set()
    finally:
        wake.remove_listener(woken.set)


def test_two_ticks_at_once_take_each_chase_step_exactly_once(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    staff_chain(session, clock)
    for i in range(20):
        start(engine, clock, kind, subject=f"s{i}")
    barrier = threading.Barrier(2)

    def run() -> int:
        barrier.wait()
        return jobs.run_tick(engine, clock=clock).chase_steps

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert sum(pool.map(lambda _: run(), range(2))) == 20
    assert len(sent(session)) == 20


def test_a_kind_names_templates_that_exist() -> None:
    with pytest.raises(ValueError, match="unknown template"):
        chase.register(chase.Kind("bad", "bad", chase.Templates(post="nope", leader="nope", above="nope")))


def test_a_reply_1_with_the_code_to_a_chase_page_answers_that_chase(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    answers: list[tuple[str, str]] = []
    mine = chase.register(replace(kind, on_answer=lambda _s, c, by: answers.append((c.subject, by))))
    staff_chain(session, clock)
    start(engine, clock, mine, subject="e7", code="RC12")
    jobs.run_tick(engine, clock=clock)
    (page,) = sent(session)
    assert page.incident_code == "RC12" and page.subject == f"chase:{rows(session)[0].id}"
    with transaction(engine) as s:  # the dispatcher sent it
        s.execute(update(OutboxMessage).where(col(OutboxMessage.id) == page.id).values(status="sent"))
    with transaction(engine) as s:
        routed = inbound.routed({chase.SUBJECT: chase.answer_page}, acks.acknowledge_page)
        outcome = inbound.handle_sms(s, clock=clock, acknowledger=routed, phone=page.recipient, body="1 rc12")
    assert outcome[0] is not None and outcome[0].ok
    assert rows(session)[0].status == "answered" and answers == [("e7", f"person:{page.person_id}")]
    answered = session.exec(select(ChaseEvent).where(ChaseEvent.kind == "answered")).one()
    person = session.get(Person, page.person_id)
    assert person is not None and answered.message == f"右安门街道 {person.name}已答复（短信）"
    assert answered.data == {"by": f"person:{page.person_id}", "via": "sms"}
    clock.advance(minutes=5)
    jobs.run_tick(engine, clock=clock)
    assert len(sent(session)) == 1


def test_a_kind_may_bring_its_own_ladder_and_refuse_replies(
    session: Session, clock: ManualClock, engine: Engine, kind: chase.Kind
) -> None:
    def city_next(chain: Sequence[Unit], role: str, _c: Chase) -> list[chase.Rung]:
        return [(chain[-1], role), (chain[0], "duty_officer")]  # the post, then straight to the city

    mine = chase.register(replace(kind, ladder=city_next, replies=False))
    staff = staff_chain(session, clock)
    start(engine, clock, mine, subject="own", code="OW12")
    jobs.run_tick(engine, clock=clock)
    (page,) = sent(session)
    with transaction(engine) as s:  # the dispatcher sent it; a reply "1" does not answer this kind
        s.execute(update(OutboxMessage).where(col(OutboxMessage.id) == page.id).values(status="sent"))
    with transaction(engine) as s:
        routed = inbound.routed({chase.SUBJECT: chase.answer_page}, acks.acknowledge_page)
        inbound.handle_sms(s, clock=clock, acknowledger=routed, phone=page.recipient, body="1")
    clock.advance(minutes=5)
    jobs.run_tick(engine, clock=clock)
    assert who(session, staff) == [("street", "duty_officer"), ("city", "duty_officer")]
    clock.advance(minutes=5)
    jobs.run_tick(engine, clock=clock)
    assert rows(session)[0].status == "exhausted"


def test_a_page_whose_text_cannot_be_written_fails_alone_not_the_tick(
    engine: Engine, session: Session, clock: ManualClock, kind: chase.Kind, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff_chain(session, clock)
    session.commit()
    monkeypatch.setitem(templates.TEMPLATES, "t_broken", "【点名】{unit}{role}请答复:{nowhere}")
    broken = chase.register(replace(kind, name="test_broken", dedup_prefix="tbr",
                                    templates=replace(kind.templates, post="t_broken")))  # fmt: skip
    start(engine, clock, broken, "b1")
    start(engine, clock, kind, "ok1")
    jobs.run_tick(engine, clock=clock)  # raised Invalid, and rolled the other chase's page back with it, before
    assert [m.template for m in sent(session)] == ["t_post"]  # the sound chase in the same batch was paged
    assert sent(session, "tbr:") == []
    assert "page_failed" in events(session)
    clock.advance(minutes=6)
    jobs.run_tick(engine, clock=clock)  # the broken chase goes on up its ladder; the tick keeps working
    assert [m.template for m in sent(session, "tbr:")] == ["t_leader"]
