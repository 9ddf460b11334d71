"""The dispatcher's rules, against a scripted provider (an in-repo fake of the channel interface)."""

from __future__ import annotations

import random
import threading
from collections import deque
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.db import transaction
from app.notify import outbox
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.dispatcher import DispatchConfig, Dispatcher, Outcome
from app.notify.models import ErrorClass, OutboxMessage
from app.notify.ratelimit import TokenBucket

OK = ProviderResult(ErrorClass.ok, provider_id=None)


class ScriptedProvider:
    """Answers each send with the next scripted result (then ok), remembering what it was asked."""

    def __init__(self, *results: ProviderResult) -> None:
        self.script = deque(results)
        self.sent: list[ChannelMessage] = []
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.gate: threading.Barrier | None = None

    def send(self, message: ChannelMessage) -> ProviderResult:
        with self.lock:
            self.sent.append(message)
            self.active += 1
            self.peak = max(self.peak, self.active)
            result = self.script.popleft() if self.script else OK
        try:
            if self.gate is not None:
                self.gate.wait(timeout=5)
        finally:
            with self.lock:
                self.active -= 1
        if result.ok and result.provider_id is None:
            return ProviderResult(ErrorClass.ok, provider_id=f"SM{message.id}-{message.attempts}")
        return result


def _enqueue(engine: Engine, clock: ManualClock, n: int = 1, channel: str = "sms") -> list[int]:
    ids = []
    with transaction(engine) as session:
        for i in range(n):
            row = outbox.enqueue(
                session,
                outbox.message(
                    clock=clock,
                    channel=channel,
                    to=f"+86137{i:08d}",
                    template="ack_help",
                    params={},
                    dedup_key=f"{channel}:{i}",
                ),
            )
            assert row is not None
            ids.append(row)
    return ids


def _row(engine: Engine, row_id: int) -> OutboxMessage:
    with Session(engine) as s:
        row = s.get(OutboxMessage, row_id)
        assert row is not None
        return row


def _dispatcher(
    engine: Engine,
    clock: ManualClock,
    provider: ScriptedProvider,
    *,
    concurrency: int = DispatchConfig.concurrency,
    max_attempts: int = 3,
    lease_seconds: float = DispatchConfig.lease_seconds,
    poll_seconds: float = DispatchConfig.poll_seconds,
) -> Dispatcher:
    cfg = DispatchConfig(
        concurrency=concurrency,
        max_attempts=max_attempts,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        backoff_base_seconds=10.0,
    )
    return Dispatcher(engine, clock=clock, channels={"sms": provider}, config=cfg, rng=random.Random(1))


def test_transient_errors_are_retried_after_a_backoff_measured_on_the_clock(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider(ProviderResult(ErrorClass.transient, error="HTTP 503"))
    dispatcher = _dispatcher(engine, clock, provider)
    [row_id] = _enqueue(engine, clock)

    assert dispatcher.run_once().retried == 1
    row = _row(engine, row_id)
    assert row.status == "queued" and row.attempts == 1 and row.last_error == "HTTP 503"
    delay = row.next_attempt_at - clock.now()
    assert timedelta(seconds=5) <= delay <= timedelta(seconds=10)  # base 10 s, jittered down to half

    assert dispatcher.run_once().claimed == 0  # not due yet
    clock.advance(delay)
    assert dispatcher.run_once().sent == 1
    row = _row(engine, row_id)
    assert row.status == "sent" and row.attempts == 2 and row.provider_id == f"SM{row_id}-2"
    assert row.sent_at == clock.now()


def test_sent_at_is_when_the_provider_took_the_message_not_when_the_batch_was_recorded(
    engine: Engine, clock: ManualClock
) -> None:
    class SecondSendIsSlow(ScriptedProvider):
        def send(self, message: ChannelMessage) -> ProviderResult:
            if self.sent:
                clock.advance(seconds=30)  # the second send takes 30 s; the batch is recorded after it
            return super().send(message)

    provider = SecondSendIsSlow()
    dispatcher = _dispatcher(engine, clock, provider, concurrency=1)
    first, second = _enqueue(engine, clock, n=2)
    handed_over = clock.now()
    assert dispatcher.run_once().sent == 2
    assert _row(engine, first).sent_at == handed_over
    assert _row(engine, second).sent_at == handed_over + timedelta(seconds=30)


def test_backoff_grows_exponentially_and_honours_retry_after(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider(
        ProviderResult(ErrorClass.transient, error="1"),
        ProviderResult(ErrorClass.transient, error="2"),
        ProviderResult(ErrorClass.rate_limited, error="429", retry_after=600),
    )
    dispatcher = _dispatcher(engine, clock, provider, max_attempts=5)
    [row_id] = _enqueue(engine, clock)
    delays = []
    for _ in range(3):
        dispatcher.run_once()
        row = _row(engine, row_id)
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.set(row.next_attempt_at)
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and delays[2] >= 600
    assert _row(engine, row_id).error_class == "rate_limited"


def test_permanent_errors_fail_at_once_and_retries_give_up(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider(
        ProviderResult(ErrorClass.recipient_invalid, error="twilio 400 error 21211: invalid To"),
        *[ProviderResult(ErrorClass.transient, error="timeout", uncertain=True)] * 3,
    )
    dispatcher = _dispatcher(engine, clock, provider)
    bad, flaky = _enqueue(engine, clock, 2)
    dispatcher.run_once()
    assert _row(engine, bad).status == "failed" and _row(engine, bad).attempts == 1
    assert "21211" in (_row(engine, bad).last_error or "")
    for _ in range(5):
        clock.advance(hours=1)
        dispatcher.run_once()
    row = _row(engine, flaky)
    assert row.status == "failed" and row.attempts == 3 and row.uncertain
    assert row.last_error == "gave up after 3 attempts: timeout"
    assert len(provider.sent) == 4


def test_a_row_left_in_sending_is_taken_again_after_its_lease(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider()
    [row_id] = _enqueue(engine, clock)
    _dispatcher(engine, clock, provider, lease_seconds=30).claim(10)  # then that process died

    other = _dispatcher(engine, clock, provider, lease_seconds=30)
    assert other.run_once().claimed == 0
    clock.advance(seconds=29)
    assert other.run_once().claimed == 0
    clock.advance(seconds=2)
    assert other.run_once().sent == 1
    assert provider.sent[0].uncertain and provider.sent[0].attempts == 2
    assert _row(engine, row_id).status == "sent"


def test_a_late_result_from_a_lost_lease_does_not_overwrite_the_new_attempt(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider()
    [row_id] = _enqueue(engine, clock)
    slow = _dispatcher(engine, clock, provider, lease_seconds=5)
    [claimed] = slow.claim(1)
    clock.advance(minutes=5)
    fast = _dispatcher(engine, clock, provider, lease_seconds=5)
    fast.run_once()
    slow.record([Outcome(claimed, ProviderResult(ErrorClass.transient, error="too late"))])
    row = _row(engine, row_id)
    assert row.status == "sent" and row.last_error is None and row.attempts == 2


def test_sends_run_concurrently_up_to_the_configured_limit(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider()
    provider.gate = threading.Barrier(4)  # all four must be in flight at once, or this times out
    dispatcher = _dispatcher(engine, clock, provider, concurrency=4)
    _enqueue(engine, clock, 8)
    report = dispatcher.drain()
    assert report.sent == 8 and provider.peak == 4


def test_claims_never_overlap_between_dispatchers(engine: Engine, clock: ManualClock) -> None:
    _enqueue(engine, clock, 60)
    dispatchers = [_dispatcher(engine, clock, ScriptedProvider()) for _ in range(3)]
    claimed: list[list[int]] = [[] for _ in dispatchers]

    def claim(i: int) -> None:
        for _ in range(10):
            claimed[i].extend(m.id for m in dispatchers[i].claim(3))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [row_id for ids in claimed for row_id in ids]
    assert len(every) == len(set(every)) == 60
    with Session(engine) as s:
        assert set(s.exec(select(OutboxMessage.status).where(col(OutboxMessage.id).in_(every))).all()) == {"sending"}


def test_the_background_loop_wakes_on_commit(engine: Engine, clock: ManualClock) -> None:
    provider = ScriptedProvider()
    dispatcher = _dispatcher(engine, clock, provider, poll_seconds=60)  # only the commit can wake it in time
    dispatcher.start()
    try:
        [row_id] = _enqueue(engine, clock)
        for _ in range(500):
            if _row(engine, row_id).status == "sent":
                break
            threading.Event().wait(0.01)
    finally:
        dispatcher.stop()
    assert _row(engine, row_id).status == "sent"


def test_the_background_loop_claims_when_rows_are_queued_not_after_every_finished_send(
    engine: Engine, clock: ManualClock
) -> None:
    provider = ScriptedProvider()
    dispatcher = _dispatcher(engine, clock, provider, poll_seconds=60)
    claims: list[int] = []
    original = dispatcher.claim

    def counted(limit: int) -> list[ChannelMessage]:
        claimed = original(limit)
        claims.append(len(claimed))
        return claimed

    dispatcher.claim = counted  # type: ignore[method-assign]
    dispatcher.start()
    try:
        ids = _enqueue(engine, clock, n=20)  # one commit, one wake
        for _ in range(500):
            if all(_row(engine, i).status == "sent" for i in ids):
                break
            threading.Event().wait(0.01)
    finally:
        dispatcher.stop()
    assert all(_row(engine, i).status == "sent" for i in ids)
    assert sum(claims) == 20
    # The start and the commit's wake; not one more for each of the twenty sends that finished.
    assert len(claims) <= 3, claims


def test_token_bucket_holds_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    bucket = TokenBucket(10, monotonic=lambda: now[0], sleep=sleep)
    waits = [bucket.reserve() for _ in range(21)]
    # One token at hand, then one every 0.1 s: the 21st waits 2 s.
    assert waits[0] == 0 and abs(waits[-1] - 2.0) < 1e-9
    now[0] = 10.0  # a long pause refills only up to the burst
    assert bucket.reserve() == 0 and bucket.reserve() > 0
