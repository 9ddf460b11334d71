"""Background work inside the server process: APScheduler triggers the escalation tick.

APScheduler's own job stores are not used for anything that matters: every timer is a row, claimed with row
locks, so a restart, or a second replica running the same jobs, changes nothing.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from app.clock import Clock
from app.escalation import jobs

log = logging.getLogger("dutyline.scheduler")


def tick_job(engine: Engine, clock: Clock) -> None:
    try:
        result = jobs.run_tick(engine, clock=clock)
    except Exception:  # a failed tick is retried by the next one; the rows are still there
        log.exception("escalation tick failed")
        return
    if result.steps or result.overdue_reports or result.missed_heartbeats:
        late = max(result.lateness, default=0.0)
        log.info("tick", extra={"steps": result.steps, "overdue_reports": result.overdue_reports,
                                "missed_heartbeats": result.missed_heartbeats, "max_lateness_s": round(late, 3)})  # fmt: skip


def build(engine: Engine, clock: Clock, *, tick_seconds: float) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    # coalesce + max_instances=1: a slow tick is never run twice at once in one process, nor caught up in a burst.
    scheduler.add_job(tick_job, "interval", seconds=tick_seconds, args=[engine, clock], id="escalation-tick",
                      coalesce=True, max_instances=1, misfire_grace_time=None)  # fmt: skip
    return scheduler
