"""Background work inside the server process: APScheduler triggers the escalation tick and roster alerts.

APScheduler's own job stores are not used for anything that matters: every timer is a row, claimed with row
locks, so a restart, or a second replica running the same jobs, changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from prometheus_client import Histogram
from sqlalchemy import Engine

from app.clock import Clock
from app.config import Settings
from app.db import transaction
from app.escalation import jobs
from app.rollcall import schedules as roll_call_schedules
from app.roster import jobs as roster_jobs

log = logging.getLogger("dutyline.scheduler")


def _guarded(name: str, work: Callable[[], object]) -> None:
    try:
        result = work()
    except Exception:  # the next run retries; the rows are still there
        log.exception("scheduled job failed", extra={"job": name})
        return
    log.debug("scheduled job done", extra={"job": name, "result": repr(result)})


class Ticker:
    """The escalation tick. APScheduler runs it every `interval` seconds; when the earliest waiting timer falls
    due sooner than that, it also asks for one extra run at that moment, so a step fires a few milliseconds
    late instead of up to a whole interval late. Runs in one process never overlap; replicas use row locks."""

    MIN_GAP = 0.05  # seconds: timers due closer together than this are taken in one run

    def __init__(self, engine: Engine, clock: Clock, interval: float, lateness: Histogram | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.interval = interval
        self.lateness = lateness
        self.scheduler: BaseScheduler | None = None
        self._busy = threading.Lock()

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
        if result.steps or result.overdue_reports or result.missed_heartbeats:
            log.info(
                "tick",
                extra={
                    "steps": result.steps,
                    "overdue_reports": result.overdue_reports,
                    "missed_heartbeats": result.missed_heartbeats,
                    "max_lateness_s": round(max(result.lateness, default=0.0), 3),
                },
            )
        if result.next_due is None:
            return None
        wait = max(self.MIN_GAP, (result.next_due - self.clock.now()).total_seconds())
        return wait if wait < self.interval else None

    def __call__(self) -> None:
        try:
            wait = self.run()
        except Exception:  # the next run retries; the rows are still there
            log.exception("scheduled job failed", extra={"job": "escalation-tick"})
            return
        if wait is not None and self.scheduler is not None and self.scheduler.running:
            self.scheduler.add_job(
                self,
                "date",
                run_date=datetime.now(UTC) + timedelta(seconds=wait),
                id="escalation-wake",
                replace_existing=True,
                misfire_grace_time=None,
            )


def build(engine: Engine, clock: Clock, settings: Settings, lateness: Histogram | None = None) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    grace = timedelta(minutes=settings.check_in_grace_minutes)

    def gaps() -> None:
        with transaction(engine) as session:
            roster_jobs.gap_alerts(session, clock=clock)

    def check_ins() -> None:
        with transaction(engine) as session:
            roster_jobs.missed_check_ins(session, clock=clock, grace=grace)

    def unannounced_roll_calls() -> None:
        with transaction(engine) as session:
            roll_call_schedules.due(session, clock=clock)

    # coalesce + max_instances=1: a slow run is never doubled in one process, nor caught up in a burst.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    ticker = Ticker(engine, clock, settings.tick_seconds, lateness)
    ticker.scheduler = scheduler
    scheduler.add_job(ticker, "interval", seconds=settings.tick_seconds, id="escalation-tick", **common)
    scheduler.add_job(_guarded, "interval", minutes=1, args=["missed-check-ins", check_ins], id="check-ins", **common)
    # Unannounced roll-calls start within seconds of their drawn instant (the instants are rows, so none is lost).
    scheduler.add_job(
        _guarded,
        "interval",
        seconds=10,
        args=["roll-call-schedules", unannounced_roll_calls],
        id="roll-calls",
        **common,
    )
    hour, minute = (int(x) for x in settings.gap_alert_time.split(":"))
    scheduler.add_job(
        _guarded, "cron", hour=hour, minute=minute, args=["roster-gaps", gaps], id="roster-gaps", **common
    )
    return scheduler
