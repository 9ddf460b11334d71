"""Background work inside the server process: the escalation tick on its own thread (woken by commits), and
APScheduler for the roster alerts.

APScheduler's own job stores are not used for anything that matters: every timer is a row, claimed with row
locks, so a restart, or a second replica running the same jobs, changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from app.clock import Clock
from app.config import Settings
from app.db import transaction
from app.escalation import jobs, wake
from app.notices import jobs as notice_jobs
from app.rollcall import jobs as rollcall_jobs
from app.roster import jobs as roster_jobs

log = logging.getLogger("dutyline.scheduler")


def _guarded(name: str, work: Callable[[], object]) -> None:
    try:
        result = work()
    except Exception:  # the next run retries; the rows are still there
        log.exception("scheduled job failed", extra={"job": name})
        return
    log.debug("scheduled job done", extra={"job": name, "result": repr(result)})


class Observer(Protocol):
    """Where the tick reports each step's lateness: the metrics histogram in the server, a plain list in a benchmark."""

    def observe(self, amount: float, /) -> None: ...


class Ticker:
    """The escalation tick, on a thread of its own. It runs at once when woken (a commit in this process that made
    a step due; on PostgreSQL, a NOTIFY from another replica's commit), when its earliest waiting timer falls due,
    and every `interval` seconds as the safety net. Runs in one process never overlap; replicas use row locks."""

    MIN_GAP = 0.05  # seconds: timers due closer together than this are taken in one run
    # Seconds a wake waits for more: under a steady intake every commit wakes every replica, and a run per commit
    # (each reading every timer kind) cost more CPU than the steps it took; gathered, one run takes them all.
    GATHER = 0.02

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        interval: float,
        lateness: Observer | None = None,
        *,
        in_process: bool = True,
        listen_url: str | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.interval = interval
        self.lateness = lateness
        self.in_process = in_process
        self.listen_url = listen_url
        self._busy = threading.Lock()
        self._woken = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.wakes = 0  # how many times a wake (in process or NOTIFY) was received

    def run(self) -> float | None:
        """One tick; the seconds until the next one is wanted when that is sooner than the interval."""
        if not self._busy.acquire(blocking=False):
            return None  # a run is in progress; it looks for the next timer when it ends
        try:
            result = jobs.run_tick(self.engine, clock=self.clock)
        finally:
            self._busy.release()
        if self.lateness is not None:
            for seconds in result.lateness:
                self.lateness.observe(seconds)
        if result.steps or result.overdue_reports or result.missed_heartbeats or result.chase_steps:
            log.info(
                "tick",
                extra={
                    "steps": result.steps,
                    "overdue_reports": result.overdue_reports,
                    "missed_heartbeats": result.missed_heartbeats,
                    "chase_steps": result.chase_steps,
                    "max_lateness_s": round(max(result.lateness, default=0.0), 3),
                },
            )
        if result.next_due is None:
            return None
        wait = max(self.MIN_GAP, (result.next_due - self.clock.now()).total_seconds())
        return wait if wait < self.interval else None

    def wake(self) -> None:
        """Run again at once (called after a commit that made something due)."""
        self.wakes += 1
        self._woken.set()

    def start(self) -> None:
        self._stop.clear()
        if self.in_process:
            wake.add_listener(self.wake)
        self._spawn(self._loop, "escalation-tick")
        if self.listen_url is not None:
            self._spawn(self._listen, "escalation-listen")

    def shutdown(self) -> None:
        wake.remove_listener(self.wake)
        self._stop.set()
        self._woken.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._woken.clear()
            try:
                wait = self.run()
            except Exception:  # the next run retries; the rows are still there
                log.exception("scheduled job failed", extra={"job": "escalation-tick"})
                wait = None
            if self._woken.wait(self.interval if wait is None else wait):
                self._stop.wait(self.GATHER)  # woken: the commits of the next few milliseconds go in the same run

    def _listen(self) -> None:
        """LISTEN for other replicas' commits that made a step due (PostgreSQL), reconnecting after a failure."""
        assert self.listen_url is not None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.listen_url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {wake.CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.wake()
            except Exception:  # the interval tick covers the gap; try again shortly
                log.exception("listening for wakes failed", extra={"job": "escalation-listen"})
                self._stop.wait(1.0)


def listen_url(engine: Engine) -> str | None:
    """The libpq URL the ticker LISTENs on, for a PostgreSQL engine (None otherwise)."""
    if engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Background:
    """The background work of one process: the ticker's threads and APScheduler's roster jobs."""

    def __init__(self, scheduler: BackgroundScheduler, ticker: Ticker) -> None:
        self.scheduler, self.ticker = scheduler, ticker

    def start(self) -> None:
        self.scheduler.start()
        self.ticker.start()

    def shutdown(self, wait: bool = True) -> None:
        self.ticker.shutdown()
        self.scheduler.shutdown(wait=wait)


def build(engine: Engine, clock: Clock, settings: Settings, lateness: Observer | None = None) -> Background:
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    grace = timedelta(minutes=settings.check_in_grace_minutes)

    def gaps() -> None:
        with transaction(engine) as session:
            roster_jobs.gap_alerts(session, clock=clock)

    def check_ins() -> None:
        with transaction(engine) as session:
            roster_jobs.missed_check_ins(session, clock=clock, grace=grace)

    def duty_follow_ups() -> None:
        with transaction(engine) as session:
            rollcall_jobs.tick(session, clock=clock)
            notice_jobs.tell_issuers(session, clock=clock)

    # coalesce + max_instances=1: a slow run is never doubled in one process, nor caught up in a burst.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    ticker = Ticker(engine, clock, settings.tick_seconds, lateness, listen_url=listen_url(engine))
    scheduler.add_job(_guarded, "interval", minutes=1, args=["missed-check-ins", check_ins], id="check-ins", **common)
    # Unannounced roll-calls start, and calling and issuing units are told, within seconds (the timers are rows).
    job = ["duty-follow-ups", duty_follow_ups]
    scheduler.add_job(_guarded, "interval", seconds=5, args=job, id="duty-follow-ups", **common)
    hour, minute = (int(x) for x in settings.gap_alert_time.split(":"))
    scheduler.add_job(
        _guarded, "cron", hour=hour, minute=minute, args=["roster-gaps", gaps], id="roster-gaps", **common
    )
    return Background(scheduler, ticker)
