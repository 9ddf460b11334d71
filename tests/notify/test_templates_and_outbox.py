from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from app import audit
from app.auth.principal import Principal
from app.clock import ManualClock
from app.db import transaction
from app.errors import Invalid
from app.notify import inbound, outbox, templates
from app.notify.models import ErrorClass, OutboxMessage

PAGE = {"level": "III", "category": "hospital", "unit": "丰台区右安门街道", "title": "某医院住院部起火", "code": "F3K7",
        "address": "右安门外大街1号", "casualties": {"deaths": 3, "injuries": 2}, "window_seconds": 300}  # fmt: skip
HALF_WIDTH = re.compile(r"[,:;()]")


def test_the_first_page_names_the_level_carries_address_and_casualties_within_two_segments() -> None:
    text = templates.render("incident_page", PAGE)
    assert text == (
        "【较大（III级）事件·医院】丰台区右安门街道：某医院住院部起火。地址：右安门外大街1号；伤亡：死亡3人、重伤2人。"
        "编号F3K7，请于5分钟内回复1签收"
    )
    assert "III级医院" not in text and len(text) <= templates.TWO_SEGMENTS

    long = templates.render(
        "incident_page",
        PAGE | {"title": "某医院住院部三层发生火灾，" * 8, "address": "北京市丰台区右安门外大街一号院" * 6},
    )
    assert len(long) == templates.TWO_SEGMENTS and long.endswith("编号F3K7，请于5分钟内回复1签收")
    assert "地址：北京市丰台区右安门外大街一号院" in long and long.count("…") == 2  # both shortened, the code kept

    bare = templates.render("incident_page", {k: v for k, v in PAGE.items() if k not in ("address", "casualties")})
    assert "地址：未报；伤亡：未报" in bare  # left out is said, never shown as zero
    assert "伤亡：无。" in templates.render("incident_page", PAGE | {"casualties": {"deaths": 0}})


def test_levels_are_named_and_windows_written_as_configured() -> None:
    assert [templates.grade(lv) for lv in ("I", "II", "III", "IV")] == [
        "特别重大（I级）", "重大（II级）", "较大（III级）", "一般（IV级）"]  # fmt: skip
    assert [templates.duration(s) for s in (45, 60, 90, 180, 3600, 5400)] == [
        "45秒", "1分钟", "1分30秒", "3分钟", "1小时", "1小时30分钟"]  # fmt: skip
    assert "请于1分30秒内回复1签收" in templates.render("incident_page", PAGE | {"window_seconds": 90})
    assert "较大（三级）事件，类别医院" in templates.render("voice_page", PAGE)


def test_every_template_renders_and_a_missing_parameter_is_named() -> None:
    sample = PAGE | {
        "lower_unit": "右安门街道",
        "tier_unit": "丰台区",
        "why": "10分钟未签收",
        "old_level": "IV",
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
        "detail": "。未应答/空岗：门头沟区值班员",
        "count": 1,
        "units": "：大峪街道",
        "codes": "F3K7、A2B9",
    }
    for name in templates.TEMPLATES:
        text = templates.render(name, sample)
        assert "{" not in text, name
        # The texts' own punctuation (times like 13:00 in the values are not punctuation).
        assert not HALF_WIDTH.search(templates.TEMPLATES[name]), f"{name}: half-width punctuation"
    assert "带班领导" in templates.render("roster_gap", sample)
    assert "首报" in templates.render("report_overdue", sample)
    assert "F 3 K 7" in templates.render("voice_page", sample)
    assert "还有3天" in templates.render("hazard_reminder", sample | {"code": "HABC234", "level": "重大"})
    assert "2起事件待签收：F3K7、A2B9" in templates.render("digest", sample | {"count": 2})
    with pytest.raises(Invalid) as err:
        templates.render("incident_page", {"level": "III"})
    assert (
        err.value.fields[0].field == "params" and "title" in err.value.message and "window_seconds" in err.value.message
    )
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


def test_a_claim_takes_a_row_for_one_attempt_and_only_that_attempt_finishes_it(
    engine: Engine, clock: ManualClock
) -> None:
    lease = timedelta(seconds=30)

    def claim() -> outbox.Claimed:
        with transaction(engine) as session:
            return outbox.claim(session, clock=clock, limit=10, lease=lease, max_attempts=3)

    def row() -> OutboxMessage:
        with Session(engine) as session:
            found = session.get(OutboxMessage, row_id)
            assert found is not None
            return found

    with transaction(engine) as session:
        row_id = _enqueue(session, clock, "k")
        assert row_id is not None
    first = claim()
    assert [r.id for r in first.rows] == [row_id] and first.rows[0].attempts == 0 and not first.orphans
    assert row().status == "sending" and row().attempts == 1 and row().lease_until == clock.now() + lease
    assert claim().rows == []  # held while its lease lasts

    clock.advance(seconds=31)  # its holder died mid-send
    second = claim()
    assert second.orphans == {row_id} and second.rows[0].attempts == 1 and not second.given_up
    with transaction(engine) as session:  # the first attempt's late answer: the second one holds the row now
        late = outbox.Sent(id=row_id, attempts=1, provider="twilio", provider_id="SM1", at=clock.now())
        assert outbox.finish(session, clock=clock, sent=[late]) == []
    assert row().status == "sending" and row().provider_id is None and row().uncertain
    with transaction(engine) as session:
        outbox.finish(
            session,
            clock=clock,
            retry=[
                outbox.Retry(
                    id=row_id,
                    attempts=2,
                    provider="twilio",
                    error="timeout",
                    error_class=ErrorClass.transient,
                    next_attempt_at=clock.now(),
                )
            ],
        )
    retried = row()
    assert retried.status == "queued" and retried.last_error == "timeout" and retried.lease_until is None
    assert retried.uncertain  # it may still have gone out: the next attempt asks the provider first

    assert [r.attempts for r in claim().rows] == [2]
    clock.advance(seconds=31)  # the third and last attempt is interrupted too
    last = claim()
    assert last.rows == [] and last.given_up == {row_id}
    gave_up = row()
    assert gave_up.status == "failed" and gave_up.last_error == "3 attempts, the last one interrupted: gave up"


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


def test_the_mainland_bindings_say_what_our_texts_say() -> None:
    """The demo's Alibaba and Tencent templates are our texts with the providers' placeholders: filled with the
    same parameters, the phone reads the same words (【】 are the providers' own, for the sign name)."""
    from app.notify import message_templates

    sample = PAGE | {"tier_unit": "丰台区", "lower_unit": "右安门街道", "why": "10分钟未签收", "old_level": "IV"}
    document = message_templates.demo_document()
    for provider in message_templates.SMS_PROVIDERS:
        for name in ("incident_page", "incident_info", "incident_reminder", "tier_unresponsive", "incident_regraded",
                     "incident_regraded_info"):  # fmt: skip
            binding = document.binding(provider, name)
            assert binding is not None, (provider, name)
            values = message_templates.variable_values(binding, name, sample)
            said = message_templates.render(binding, values, provider)
            assert said == templates.render(name, sample).replace("【", "[").replace("】", "]"), (provider, name)
