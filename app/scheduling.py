"""Background work inside the server process: APScheduler triggers the escalation tick and roster alerts.

APScheduler's own job stores are not used for anything that matters: every timer is a row, claimed with row
locks, so a restart, or a second replica running the same jobs, changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import Histogram
from sqlalchemy import Engine

from app.clock import Clock
from app.config import Settings
from app.db import transaction
from app.escalation import jobs
from app.roster import jobs as roster_jobs

log = logging.getLogger("dutyline.scheduler")


def _guarded(name: str, work: Callable[[], object]) -> None:
    try:
        result = work()
    except Exception:  # the next run retries; the rows are still there
        log.exception("scheduled job failed", extra={"job": name})
        return
    log.debug("scheduled job done", extra={"job": name, "result": repr(result)})


def tick_job(engine: Engine, clock: Clock, lateness: Histogram | None = None) -> None:
    def run() -> jobs.TickResult:
        result = jobs.run_tick(engine, clock=clock)
        if lateness is not None:
            for seconds in result.lateness:
                lateness.observe(seconds)
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
        return result

    _guarded("escalation-tick", run)


def build(engine: Engine, clock: Clock, settings: Settings, lateness: Histogram | None = None) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    grace = timedelta(minutes=settings.check_in_grace_minutes)

    def gaps() -> None:
        with transaction(engine) as session:
            roster_jobs.gap_alerts(session, clock=clock)

    def check_ins() -> None:
        with transaction(engine) as session:
            roster_jobs.missed_check_ins(session, clock=clock, grace=grace)

    # coalesce + max_instances=1: a slow run is never doubled in one process, nor caught up in a burst.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.add_job(
        tick_job,
        "interval",
        seconds=settings.tick_seconds,
        args=[engine, clock, lateness],
        id="escalation-tick",
        **common,
    )
    scheduler.add_job(_guarded, "interval", minutes=1, args=["missed-check-ins", check_ins], id="check-ins", **common)
    hour, minute = (int(x) for x in settings.gap_alert_time.split(":"))
    scheduler.add_job(
        _guarded, "cron", hour=hour, minute=minute, args=["roster-gaps", gaps], id="roster-gaps", **common
    )
    return scheduler
