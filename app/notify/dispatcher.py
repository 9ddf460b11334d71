"""The dispatcher: claims due outbox rows, sends them through their channel, records what happened.

Threads, not asyncio. The twilio library is synchronous, so an asyncio dispatcher would still hand every
SMS to a thread pool (`to_thread`); measured on the 2-core bench machine (bench/bench_sms.py, 50 ms
simulated latency, concurrency 64), the thread pool reaches the raw-httpx ceiling of the same pool, and
the database work (claiming and recording in batches) is a small share of each round. A pool of
`concurrency` threads, each blocking on one HTTP call at a time, is the simplest shape that keeps up;
it never runs on the server's event loop.

Shape of a round: claim up to N due rows in one short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
so replicas never claim the same row; SQLite has a single writer), mark them `sending` with a lease, send
them on the pool (each channel behind its own token bucket), then record all outcomes in one transaction.
A row whose holder died stays `sending` until its lease passes, then is claimed again, flagged `uncertain`
(it may have gone out): an SMS channel first looks for the message at the provider and adopts it rather
than send it twice. Due times come from the injected Clock; waiting uses real time (tokens, polling).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine, and_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.clock import Clock
from app.db import is_postgres, reader, transaction
from app.notify import outbox
from app.notify.channels import Channel, ChannelMessage, ChannelUnavailable, ProviderResult
from app.notify.models import ErrorClass, OutboxMessage, Status, WebhookSubscription

log = logging.getLogger("dutyline.notify")

FAIL_AT_ONCE = frozenset({ErrorClass.invalid_recipient, ErrorClass.permanent})


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once; thread-safe.

    Each caller reserves the next free slot under the lock and sleeps outside it, so waiting callers
    are served in order and the rate holds exactly whatever the number of threads.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = self.burst
        self._last = monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; the seconds to wait before using it."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)


@dataclass(frozen=True)
class DispatchConfig:
    concurrency: int = 16
    max_attempts: int = 8
    lease_seconds: float = 120.0
    poll_seconds: float = 2.0
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 900.0
    # Messages per second per channel; a channel that is absent (or 0) is not limited.
    rates: Mapping[str, float] = field(default_factory=dict)
    batch_size: int | None = None


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed


@dataclass(frozen=True)
class _Outcome:
    message: ChannelMessage
    result: ProviderResult


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock,
        channels: Mapping[str, Channel],
        config: DispatchConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.channels = dict(channels)
        self.config = config or DispatchConfig()
        self.rng = rng or random.Random()
        self._buckets = {name: TokenBucket(rate) for name, rate in self.config.rates.items() if rate and rate > 0}
        # A row waiting for its channel's tokens must not outlive its lease.
        slowest = min((b.rate for b in self._buckets.values()), default=0.0)
        wait_bound = 2 * self.config.concurrency / slowest + 60 if slowest else 0.0
        self.lease = timedelta(seconds=max(self.config.lease_seconds, wait_bound))
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._results: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._inflight = 0
        self._inflight_lock = threading.Lock()

    # ---- lifecycle (the app's lifespan) ----

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        outbox.add_wake_listener(self.wake)
        self._thread = threading.Thread(target=self._loop, name="dutyline-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        outbox.remove_wake_listener(self.wake)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=False)
            self._executor = None
        # Whatever finished while stopping is recorded; anything unrecorded is retaken after its lease.
        self._record_pending()

    def wake(self) -> None:
        self._wake.set()

    # ---- deterministic entry points (tests, the benchmark) ----

    def run_once(self, limit: int | None = None) -> DispatchReport:
        """Claim the rows due now, send them all, record the outcomes; returns what happened."""
        messages = self._claim(limit or self._batch_size())
        report = DispatchReport(claimed=len(messages))
        if not messages:
            return report
        outcomes = list(self._pool().map(self._send, messages))
        report.add(self._record(outcomes))
        return report

    def drain(self, max_rounds: int = 1000) -> DispatchReport:
        """run_once until nothing is due at the clock's current time."""
        total = DispatchReport()
        for _ in range(max_rounds):
            report = self.run_once()
            total.add(report)
            if report.claimed == 0:
                break
        return total

    # ---- the background loop ----

    def _batch_size(self) -> int:
        return self.config.batch_size or self.config.concurrency * 4

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="dutyline-send")
            return self._executor

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self._pump()
            except Exception:
                log.exception("dispatcher round failed; retrying after the poll interval")
                busy = False
            if not busy:
                self._wake.wait(self.config.poll_seconds)
                self._wake.clear()

    def _pump(self) -> bool:
        """Keep the pool full (claim only as many rows as there are free senders) and record results."""
        recorded = self._record_pending()
        with self._inflight_lock:
            free = self.config.concurrency * 2 - self._inflight
        claimed: list[ChannelMessage] = []
        if free > 0 and not self._stopping.is_set():
            claimed = self._claim(min(free, self._batch_size()))
            with self._inflight_lock:
                self._inflight += len(claimed)
            for message in claimed:
                self._pool().submit(self._send, message).add_done_callback(self._collect)
        return bool(claimed) or recorded > 0

    def _collect(self, future: Future[_Outcome]) -> None:
        self._results.put(future.result())
        with self._inflight_lock:
            self._inflight -= 1
        self._wake.set()

    def _record_pending(self) -> int:
        outcomes: list[_Outcome] = []
        with contextlib.suppress(queue.Empty):
            while True:
                outcomes.append(self._results.get_nowait())
        if outcomes:
            self._record(outcomes)
        return len(outcomes)

    # ---- claim, send, record ----

    def _claim(self, limit: int) -> list[ChannelMessage]:
        with transaction(self.engine) as session:
            now = self.clock.now()
            due = or_(
                and_(col(OutboxMessage.status) == Status.queued.value, col(OutboxMessage.next_attempt_at) <= now),
                and_(col(OutboxMessage.status) == Status.sending.value, col(OutboxMessage.lease_until) <= now),
            )
            query = (
                select(OutboxMessage)
                .where(due)
                .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
                .limit(limit)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            rows = list(session.exec(query).all())
            secrets = self._secrets(session, {r.subscription_id for r in rows if r.subscription_id})
            claimed: list[ChannelMessage] = []
            for row in rows:
                if row.status == Status.sending:
                    row.uncertain = True  # its holder died mid-send: it may have gone out
                    if row.attempts >= self.config.max_attempts:
                        row.status = Status.failed.value
                        row.lease_until = None
                        row.last_error = f"gave up after {row.attempts} attempts (the last one was interrupted)"
                        continue
                row.status = Status.sending.value
                row.attempts += 1
                row.lease_until = now + self.lease
                assert row.id is not None
                claimed.append(
                    ChannelMessage(
                        id=row.id,
                        channel=row.channel,
                        to=row.recipient,
                        body=row.body,
                        template=row.template,
                        params=row.params,
                        attempts=row.attempts,
                        uncertain=row.uncertain,
                        incident_code=row.incident_code,
                        event_id=row.event_id,
                        secret=secrets.get(row.subscription_id) if row.subscription_id else None,
                    )
                )
            session.flush()
        return claimed

    @staticmethod
    def _secrets(session: Session, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        query = select(WebhookSubscription).where(
            col(WebhookSubscription.id).in_(ids), col(WebhookSubscription.active).is_(True)
        )
        return {s.id: s.secret for s in session.exec(query).all() if s.id is not None}

    def _send(self, message: ChannelMessage) -> _Outcome:
        try:
            channel = self.channels.get(message.channel) or ChannelUnavailable(
                f"no {message.channel} channel is configured"
            )
            bucket = self._buckets.get(message.channel)
            if bucket is not None:
                bucket.acquire()
            if message.uncertain:
                adopted = self._adopt_previous(channel, message)
                if adopted is not None:
                    return _Outcome(message, adopted)
            return _Outcome(message, channel.send(message))
        except Exception as exc:  # a bug in a channel must not lose the row: it is retried like a transient error
            log.exception("channel %s raised for message %s", message.channel, message.id)
            return _Outcome(message, ProviderResult(ErrorClass.transient, error=f"internal error: {exc!r}"))

    def _adopt_previous(self, channel: Channel, message: ChannelMessage) -> ProviderResult | None:
        lookup = getattr(channel, "previous_sends", None)
        if lookup is None:
            return None
        try:
            candidates: list[str] = lookup(message)
        except Exception as exc:
            reason = f"cannot check a previous attempt: {exc!r}"
            return ProviderResult(ErrorClass.transient, error=reason, uncertain=True)
        if not candidates:
            return None
        with Session(reader(self.engine)) as session:
            taken = set(
                session.exec(select(OutboxMessage.provider_id).where(col(OutboxMessage.provider_id).in_(candidates)))
            )
        free = [sid for sid in candidates if sid not in taken]
        if not free:
            return None
        return ProviderResult(ErrorClass.ok, provider_id=free[0], extra={"adopted": True})

    def _backoff(self, attempts: int, result: ProviderResult) -> timedelta:
        base = min(self.config.backoff_max_seconds, self.config.backoff_base_seconds * 2 ** max(0, attempts - 1))
        delay = base * (0.5 + self.rng.random() / 2)  # jitter: retries of one outage do not arrive together
        if result.retry_after:
            delay = max(delay, min(result.retry_after, self.config.backoff_max_seconds))
        return timedelta(seconds=delay)

    def _record(self, outcomes: Iterable[_Outcome]) -> DispatchReport:
        outcomes = list(outcomes)
        try:
            with transaction(self.engine) as session:
                return self._apply(session, outcomes)
        except IntegrityError:
            # Two rows adopted the same provider id (replicas racing): record one by one, dropping the clash.
            report = DispatchReport()
            for outcome in outcomes:
                try:
                    with transaction(self.engine) as session:
                        report.add(self._apply(session, [outcome]))
                except IntegrityError:
                    log.warning("provider id %s is already recorded elsewhere", outcome.result.provider_id)
                    stripped = ProviderResult(ErrorClass.transient, error="provider id clash", uncertain=True)
                    with transaction(self.engine) as session:
                        report.add(self._apply(session, [_Outcome(outcome.message, stripped)]))
            return report

    def _apply(self, session: Session, outcomes: list[_Outcome]) -> DispatchReport:
        report = DispatchReport()
        now = self.clock.now()
        ids = [o.message.id for o in outcomes]
        query = select(OutboxMessage).where(col(OutboxMessage.id).in_(ids))
        if is_postgres(session):
            query = query.with_for_update()
        rows = {r.id: r for r in session.exec(query).all()}
        for outcome in outcomes:
            row = rows.get(outcome.message.id)
            result = outcome.result
            if row is None:
                continue
            if row.status != Status.sending or row.attempts != outcome.message.attempts:
                # A receipt got here first, or the lease passed and another attempt owns the row.
                if result.ok and result.provider_id and row.provider_id is None and row.status != Status.queued:
                    row.provider_id = result.provider_id
                continue
            row.lease_until = None
            if result.ok:
                row.status = Status.delivered.value if result.delivered else Status.sent.value
                row.provider_id = result.provider_id or row.provider_id
                row.sent_at = row.sent_at or now
                row.uncertain = False
                row.error_class = None
                if result.delivered:
                    row.delivered_at = now
                    report.delivered += 1
                else:
                    report.sent += 1
                continue
            row.error_class = result.error_class.value
            exhausted = row.attempts >= self.config.max_attempts
            if result.error_class in FAIL_AT_ONCE or exhausted:
                row.status = Status.failed.value
                gave_up = exhausted and result.error_class not in FAIL_AT_ONCE
                prefix = f"gave up after {row.attempts} attempts: " if gave_up else ""
                row.last_error = prefix + (result.error or result.error_class.value)
                report.failed += 1
            else:
                row.status = Status.queued.value
                row.last_error = result.error or result.error_class.value
                row.uncertain = row.uncertain or result.uncertain
                row.next_attempt_at = now + self._backoff(row.attempts, result)
                report.retried += 1
        session.flush()
        return report
