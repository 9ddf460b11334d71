"""The dispatcher: claims due outbox rows, sends them through their channel, records what happened.

Threads, not asyncio, chosen by measurement (bench/bench_sms.py, 2 shared cores, 50 ms simulated latency,
concurrency 64): the twilio library is synchronous, so an asyncio dispatcher would hand every SMS to a
thread anyway; a pool of `concurrency` threads, each with its own small httpx client, reached 884 msg/s
against 1,059 msg/s for raw httpx POSTs from 64 threads (0.84), while 64 asyncio tasks sharing one
httpx.AsyncClient managed 149 msg/s on the same simulator. The senders never run on the server's event loop.

Shape of a round: claim up to N due rows in one short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
so replicas never claim the same row; SQLite has a single writer), mark them `sending` with a lease, send
them on the pool (each channel behind its own token bucket), then record all outcomes in one transaction.
A row whose holder died stays `sending` until its lease passes, then is claimed again, flagged `uncertain`
(it may have gone out): an SMS channel first looks for the message at the provider and adopts it rather
than send it twice. Due times come from the injected Clock; waiting uses real time (tokens, polling).
The row transitions themselves are `outbox.claim` and `outbox.finish`; the dispatcher decides what an
outcome means (fail at once, give up, retry after a jittered backoff) and builds the messages to send.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.clock import Clock
from app.db import reader, transaction
from app.notify import delivery, outbox, receipts
from app.notify import robots as robot_service
from app.notify.channels import Channel, ChannelMessage, ChannelUnavailable, ProviderResult
from app.notify.delivery import DeliveryEvent, Observer
from app.notify.models import ErrorClass, OutboxMessage, WebhookSubscription
from app.notify.ratelimit import TokenBucket

log = logging.getLogger("dutyline.notify")

FAIL_AT_ONCE = frozenset({ErrorClass.recipient_invalid, ErrorClass.template_invalid, ErrorClass.permanent})


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
    coalesce_seconds: float = 0.01


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
class Outcome:
    """What one send came to, for `Dispatcher.record`."""

    message: ChannelMessage
    result: ProviderResult
    # When the provider answered: a message's sent_at is when it was handed over, not when that was recorded.
    at: datetime | None = None


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock,
        channels: Mapping[str, Channel],
        config: DispatchConfig | None = None,
        rng: random.Random | None = None,
        observers: list[Observer] | None = None,
    ) -> None:
        self.engine = engine
        # Called in the transaction that records outcomes, with the failovers and failures in it.
        self.observers: list[Observer] = observers if observers is not None else []
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
        self._wake = threading.Event()  # something to do: rows queued, or a send finished
        self._queued = threading.Event()  # rows were queued in this process since the last claim
        self._queued.set()
        self._more = False  # the last claim was full: more rows are due
        self._next_poll = 0.0  # monotonic time of the next claim without a wake (other replicas' rows, retries)
        self._next_release = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._results: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
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
        """Rows were queued (a commit in this process): claim them now."""
        self._queued.set()
        self._wake.set()

    # ---- deterministic entry points (tests, the benchmark) ----

    def run_once(self, limit: int | None = None) -> DispatchReport:
        """Claim the rows due now, send them all, record the outcomes; returns what happened."""
        messages = self.claim(limit or self._batch_size())
        report = DispatchReport(claimed=len(messages))
        if not messages:
            return report
        outcomes = list(self._pool().map(self._send, messages))
        report.add(self.record(outcomes))
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

    def release_held(self) -> None:
        """Apply receipts held for a provider id recorded since (the safety net for one held while its send was
        being recorded in another transaction; `record` releases the rest as it records)."""
        with transaction(self.engine) as session:
            events = receipts.release(session, clock=self.clock)
            if events and self.observers:
                delivery.notify(self.observers, session, self.clock, events)

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
                more_due = self._pump()
            except Exception:
                log.exception("dispatcher round failed; retrying after the poll interval")
                more_due = False
            if not more_due:
                if time.monotonic() >= self._next_release:
                    self._next_release = time.monotonic() + self.config.poll_seconds
                    try:
                        self.release_held()
                    except Exception:
                        log.exception("releasing held receipts failed; retrying after the poll interval")
                self._wake.wait(max(0.0, self._next_poll - time.monotonic()))
                self._wake.clear()
            # Let finished sends and freed slots gather for a moment: one transaction then records (and
            # claims) dozens of rows. One per message made SQLite's commits the bottleneck (measured).
            self._stopping.wait(self.config.coalesce_seconds)

    def _pump(self) -> bool:
        """Record finished sends and top the pool up; True when a full claim suggests more rows are due."""
        self._record_pending()
        with self._inflight_lock:
            free = self.config.concurrency * 2 - self._inflight
        if free <= 0 or self._stopping.is_set():
            return True
        # A finished send frees a slot but queues nothing: claim only for rows queued here, after a full claim
        # (more are due), or at the poll (other replicas' rows, retries, lost leases). A claim after every
        # finished send cost a transaction per message under a steady load (profiled).
        if not (self._queued.is_set() or self._more or time.monotonic() >= self._next_poll):
            return False
        self._queued.clear()
        self._next_poll = time.monotonic() + self.config.poll_seconds
        want = min(free, self._batch_size())
        claimed = self.claim(want)
        with self._inflight_lock:
            self._inflight += len(claimed)
        for message in claimed:
            self._pool().submit(self._send, message).add_done_callback(self._collect)
        self._more = len(claimed) == want
        return self._more

    def _collect(self, future: Future[Outcome]) -> None:
        self._results.put(future.result())
        with self._inflight_lock:
            self._inflight -= 1
        self._wake.set()

    def _record_pending(self) -> int:
        outcomes: list[Outcome] = []
        with contextlib.suppress(queue.Empty):
            while True:
                outcomes.append(self._results.get_nowait())
        if outcomes:
            self.record(outcomes)
        return len(outcomes)

    # ---- claim, send, record ----

    def claim(self, limit: int) -> list[ChannelMessage]:
        """Claim up to `limit` due rows for this dispatcher's lease: the messages to send (a robot's posts in one)."""
        with transaction(self.engine) as session:
            claimed = outbox.claim(
                session, clock=self.clock, limit=limit, lease=self.lease, max_attempts=self.config.max_attempts
            )
            take, orphans = claimed.rows, claimed.orphans
            if not take:
                return []
            secrets = self._secrets(session, {r.subscription_id for r in take if r.subscription_id})
            robots = robot_service.targets(session, {r.robot_id for r in take if r.robot_id is not None})
        messages = [
            ChannelMessage(
                id=r.id,
                channel=r.channel,
                to=r.recipient,
                body=r.body,
                template=r.template,
                params=r.params,
                attempts=r.attempts + 1,
                uncertain=bool(r.uncertain) or r.id in orphans,
                incident_code=r.incident_code,
                event_id=r.event_id,
                provider=r.provider,
                secret=secrets.get(r.subscription_id) if r.subscription_id else None,
                created_at=r.created_at,
            )
            for r in take
            if r.robot_id is None
        ]
        posts = [r for r in take if r.robot_id is not None]
        return messages + self._bundles(posts, robots) if posts else messages

    @staticmethod
    def _bundles(posts: list[Row[Any]], robots: Mapping[int, robot_service.Target]) -> list[ChannelMessage]:
        """One message per robot for all its due posts, oldest first."""
        by_robot: dict[int, list[Row[Any]]] = {}
        for r in sorted(posts, key=lambda r: r.id):
            by_robot.setdefault(r.robot_id, []).append(r)
        messages = []
        for robot_id, group in by_robot.items():
            target = robots.get(robot_id)
            first = group[0]
            mobiles = sorted({m for r in group for m in r.params.get("mobiles", [])})
            messages.append(
                ChannelMessage(
                    id=first.id,
                    channel=first.channel,
                    to=target.url if target else "",
                    body=robot_service.content(target.kind, [r.body for r in group]) if target else "",
                    template=first.template,
                    params={"kind": target.kind if target else "", "mobiles": mobiles},
                    attempts=max(r.attempts + 1 for r in group),
                    incident_code=first.incident_code,
                    secret=target.secret if target else None,
                    bundle=tuple((r.id, r.attempts + 1) for r in group[1:]),
                )
            )
        return messages

    @staticmethod
    def _secrets(session: Session, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        query = select(WebhookSubscription).where(
            col(WebhookSubscription.id).in_(ids), col(WebhookSubscription.active).is_(True)
        )
        return {s.id: s.secret for s in session.exec(query).all() if s.id is not None}

    def _send(self, message: ChannelMessage) -> Outcome:
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
                    return Outcome(message, adopted, self.clock.now())
            result = channel.send(message)
            return Outcome(message, result, self.clock.now())
        except Exception as exc:  # a bug in a channel must not lose the row: it is retried like a transient error
            log.exception("channel %s raised for message %s", message.channel, message.id)
            return Outcome(message, ProviderResult(ErrorClass.transient, error=f"internal error: {exc!r}"))

    def _adopt_previous(self, channel: Channel, message: ChannelMessage) -> ProviderResult | None:
        """Ask the provider whether the interrupted attempt went out: its result to record (ok: adopted, an
        error: cannot tell yet, try later), or None to send."""
        check = getattr(channel, "went_through", None)
        lookup = getattr(channel, "previous_sends", None)
        provider: str | None = None
        try:
            if check is not None:
                found: ProviderResult | None = check(message)
                if found is None or "candidates" not in found.extra:
                    return found
                candidates: list[str] = list(found.extra["candidates"])
                provider = found.provider
            elif lookup is not None:
                candidates = lookup(message)
            else:
                return None
        except Exception as exc:
            reason = f"cannot check a previous attempt: {exc!r}"
            return ProviderResult(ErrorClass.transient, error=reason, uncertain=True, provider=message.provider)
        if not candidates:
            return None
        with Session(reader(self.engine)) as session:
            holders = dict(
                session.exec(
                    select(OutboxMessage.provider_id, OutboxMessage.id).where(
                        col(OutboxMessage.provider_id).in_(candidates)
                    )
                ).all()
            )
        # A receipt or a call's answer may already have recorded the earlier attempt's id on this very row.
        mine = [sid for sid in candidates if holders.get(sid) == message.id]
        free = mine or [sid for sid in candidates if sid not in holders]
        if not free:
            return None
        return ProviderResult(ErrorClass.ok, provider_id=free[0], extra={"adopted": True}, provider=provider)

    def _backoff(self, attempts: int, result: ProviderResult) -> timedelta:
        base = min(self.config.backoff_max_seconds, self.config.backoff_base_seconds * 2 ** max(0, attempts - 1))
        delay = base * (0.5 + self.rng.random() / 2)  # jitter: retries of one outage do not arrive together
        if result.retry_after:
            delay = max(delay, min(result.retry_after, self.config.backoff_max_seconds))
        return timedelta(seconds=delay)

    def record(self, outcomes: Iterable[Outcome]) -> DispatchReport:
        """Record what the sends came to, in one transaction (one per outcome when two adopted one provider id)."""
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
                        report.add(self._apply(session, [Outcome(outcome.message, stripped)]))
            return report

    def _apply(self, session: Session, outcomes: list[Outcome]) -> DispatchReport:
        """Sort outcomes into sent, retried (after a jittered backoff) and failed (at once, or attempts spent)
        and write them with `outbox.finish`, whose conditional updates let only the attempt that holds a row
        finish it; observers hear the failovers and failures in the same transaction."""
        report = DispatchReport()
        now = self.clock.now()
        done: list[outbox.Sent] = []
        retry: list[outbox.Retry] = []
        fail: list[outbox.Failed] = []
        events: list[DeliveryEvent] = []
        for outcome in outcomes:
            message, result = outcome.message, outcome.result
            rows = message.rows
            carried = result.provider if result.ok else None
            events += [
                DeliveryEvent(
                    "failover", message.id, message.channel, f.provider, f.error_class.value, f.reason, carried
                )
                for f in result.failovers
            ]
            if result.ok:
                at = outcome.at or now
                done += [
                    outbox.Sent(
                        id=row_id,
                        attempts=attempts,
                        provider=result.provider,
                        provider_id=result.provider_id,
                        at=at,
                        delivered=result.delivered,
                    )
                    for row_id, attempts in rows
                ]
                if result.delivered:
                    report.delivered += len(rows)
                else:
                    report.sent += len(rows)
                continue
            exhausted = message.attempts >= self.config.max_attempts
            if result.error_class in FAIL_AT_ONCE or exhausted:
                gave_up = exhausted and result.error_class not in FAIL_AT_ONCE
                prefix = f"gave up after {message.attempts} attempts: " if gave_up else ""
                error = prefix + (result.error or result.error_class.value)
                fail += [
                    outbox.Failed(
                        id=row_id,
                        attempts=attempts,
                        provider=result.provider,
                        error=error,
                        error_class=result.error_class,
                    )
                    for row_id, attempts in rows
                ]
                events += [
                    DeliveryEvent("failed", row_id, message.channel, result.provider, result.error_class.value, error)
                    for row_id, _ in rows
                ]
                report.failed += len(rows)
            else:
                later = now + self._backoff(message.attempts, result)
                retry += [
                    outbox.Retry(
                        id=row_id,
                        attempts=attempts,
                        provider=result.provider,
                        error=result.error or result.error_class.value,
                        error_class=result.error_class,
                        next_attempt_at=later,
                        uncertain=result.uncertain,
                    )
                    for row_id, attempts in rows
                ]
                report.retried += len(rows)
        events += outbox.finish(session, clock=self.clock, sent=done, retry=retry, failed=fail)
        if events and self.observers:
            delivery.notify(self.observers, session, self.clock, events)
        return report
