from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from app import audit
from app.auth.principal import Principal
from app.clock import ManualClock
from app.db import transaction
from app.errors import Invalid
from app.notify import inbound, outbox, templates
from app.notify.models import OutboxMessage

PAGE = {"level": "III", "category": "hospital", "unit": "丰台区右安门街道", "title": "某医院住院部起火", "code": "F3K7"}


def test_the_first_page_fits_one_segment_with_code_and_reply_hint() -> None:
    text = templates.render("incident_page", PAGE)
    assert text == "【III级医院】丰台区右安门街道:某医院住院部起火。编号F3K7,回复1签收"
    assert len(text) <= templates.SEGMENT

    long = templates.render("incident_page", PAGE | {"title": "某医院住院部三层发生火灾," * 5})
    assert len(long) == templates.SEGMENT and long.endswith("编号F3K7,回复1签收") and "…" in long


def test_every_template_renders_and_a_missing_parameter_is_named() -> None:
    sample = PAGE | {
        "lower_unit": "右安门街道",
        "minutes": 5,
        "report": "first",
        "due": "13:00",
        "role": "leader",
        "start": "04-19 08:30",
        "end": "04-20 08:30",
        "name": "119接警系统",
        "shift_start": "08:30",
        "caller": "北京市",
        "label": "红色预警",
        "issuer": "北京市",
        "venue": "右安门医院",
        "to_unit": "丰台区",
        "deadline": "04-25",
        "days": 3,
        "text": "【点名】右安门街道值班员请答复",
        "what": "未在5分钟内应答",
        "posts": 32,
        "answered": 31,
        "missed": 1,
        "vacant": 0,
        "detail": "。未应答/空岗:门头沟区值班员",
        "count": 1,
        "units": ":大峪街道",
        "codes": "F3K7、A2B9",
    }
    for name in templates.TEMPLATES:
        assert "{" not in templates.render(name, sample), name
    assert "带班领导" in templates.render("roster_gap", sample)
    assert "首报" in templates.render("report_overdue", sample)
    assert "F 3 K 7" in templates.render("voice_page", sample)
    assert "还有3天" in templates.render("hazard_reminder", sample | {"code": "HABC234", "level": "重大"})
    assert "2起事件待签收:F3K7、A2B9" in templates.render("digest", sample | {"count": 2})
    with pytest.raises(Invalid) as err:
        templates.render("incident_page", {"level": "III"})
    assert err.value.fields[0].field == "params" and "title" in err.value.message
    with pytest.raises(Invalid):
        templates.render("no_such_template", {})


def _enqueue(session: Session, clock: ManualClock, key: str) -> int | None:
    return outbox.enqueue(
        session,
        outbox.message(
            clock=clock,
            channel="sms",
            to="+8613800000001",
            template="incident_page",
            params=PAGE,
            dedup_key=key,
            incident_id=12,
            incident_code="F3K7",
            tier="street",
            step=1,
        ),
    )


def test_enqueue_writes_a_queued_row_with_its_body_and_a_repeat_is_a_noop(engine: Engine, clock: ManualClock) -> None:
    actor = Principal.system("test")
    with transaction(engine) as session:
        first = _enqueue(session, clock, "page:12:street:1")
        audit.record(session, clock=clock, actor=actor, action="a", object_type="t", object_id=1)
        repeat = _enqueue(session, clock, "page:12:street:1")  # in the same transaction
        audit.record(session, clock=clock, actor=actor, action="b", object_type="t", object_id=2)
    with transaction(engine) as session:
        again = _enqueue(session, clock, "page:12:street:1")  # and in a later one
        audit.record(session, clock=clock, actor=actor, action="c", object_type="t", object_id=3)

    assert first is not None and repeat is None and again is None
    with Session(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        actions = sorted(e.action for e in session.exec(select(audit.AuditEntry)).all())
    assert actions == ["a", "b", "c"]  # the caller's other writes all survived the repeats
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "queued" and row.attempts == 0 and row.next_attempt_at == clock.now()
    assert row.body == templates.render("incident_page", PAGE) and row.incident_code == "F3K7"


def test_enqueue_rejects_an_unknown_channel(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as session, pytest.raises(Invalid) as err:
        outbox.enqueue(
            session, outbox.message(clock=clock, channel="fax", to="x", template="ack_help", params={}, dedup_key="k")
        )
    assert err.value.fields[0].field == "channel"


def test_the_dispatcher_is_woken_after_commit_only(engine: Engine, clock: ManualClock) -> None:
    calls: list[int] = []

    def wake() -> None:
        calls.append(1)

    outbox.add_wake_listener(wake)
    try:

        def failing_change() -> None:
            with transaction(engine) as session:
                _enqueue(session, clock, "rolled-back")
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            failing_change()
        assert calls == []
        with transaction(engine) as session:
            _enqueue(session, clock, "committed")
            assert calls == []  # not before the row is visible to other connections
        assert calls == [1]
    finally:
        outbox.remove_wake_listener(wake)
    with Session(engine) as session:
        assert [r.dedup_key for r in session.exec(select(OutboxMessage)).all()] == ["committed"]


def test_receipts_only_move_a_message_forward(engine: Engine, clock: ManualClock) -> None:
    with transaction(engine) as session:
        row_id = _enqueue(session, clock, "k")
        assert row_id is not None
    with transaction(engine) as session:
        outbox.apply_provider_status(
            session, clock=clock, provider_id="SM1", provider_status="delivered", message_id=row_id
        )
    with transaction(engine) as session:  # a late "sent" receipt cannot undo "delivered"
        late = outbox.apply_provider_status(session, clock=clock, provider_id="SM1", provider_status="sent")
        assert late is not None and late.status == "delivered" and late.delivered_at == clock.now()
        # A receipt for a different send of the same row does not take it over.
        assert (
            outbox.apply_provider_status(
                session, clock=clock, provider_id="SM2", provider_status="failed", message_id=row_id
            )
            is None
        )


@pytest.mark.parametrize(
    ("text", "ack", "code"),
    [
        ("1", True, None),
        (" 1 ", True, None),
        ("１", True, None),
        ("1 f3k7", True, "F3K7"),
        ("１　Ｆ３Ｋ７", True, "F3K7"),
        ("1F3K7", True, "F3K7"),
        ("1。", True, None),
        ("11", False, None),
        ("2", False, None),
        ("收到", False, None),
        ("", False, None),
        ("1 F3K7 extra", False, None),
    ],
)
def test_replies_are_parsed_like_a_person_types_them(text: str, ack: bool, code: str | None) -> None:
    reply = inbound.parse_reply(text)
    assert (reply.ack, reply.code) == (ack, code)
