"""GET /metrics (Prometheus). Counts come from the database at scrape time, so every replica reports the same
truth; escalation lateness is measured by this process's own ticks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from app.clock import Clock
from app.db import reader
from app.incidents.models import Incident
from app.notify.models import OutboxMessage

LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        incidents = GaugeMetricFamily(
            "dutyline_incidents", "Incidents by level and status", labels=["severity", "status"]
        )
        pages = GaugeMetricFamily(
            "dutyline_messages", "Outbox messages by channel and status", labels=["channel", "status"]
        )
        depth = GaugeMetricFamily("dutyline_dispatch_queue_depth", "Messages queued or being sent")
        oldest = GaugeMetricFamily("dutyline_dispatch_oldest_queued_seconds", "Age of the oldest queued message")
        with Session(reader(self.engine)) as session:
            for severity, status, n in session.exec(
                select(Incident.severity, Incident.status, func.count()).group_by(
                    col(Incident.severity), col(Incident.status)
                )
            ):
                incidents.add_metric([severity, status], n)
            waiting = 0
            for channel, status, n in session.exec(
                select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
                    col(OutboxMessage.channel), col(OutboxMessage.status)
                )
            ):
                pages.add_metric([channel, status], n)
                if status in ("queued", "sending"):
                    waiting += n
            first: datetime | None = session.exec(
                select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "queued")
            ).one()
        depth.add_metric([], waiting)
        oldest.add_metric([], (self.clock.now() - first).total_seconds() if first is not None else 0.0)
        yield from (incidents, pages, depth, oldest)


def build_registry(engine: Engine, clock: Clock) -> tuple[CollectorRegistry, Histogram]:
    """A registry per app (tests build several apps in one process), and the lateness histogram it holds."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine, clock))
    lateness = Histogram(
        "dutyline_escalation_lateness_seconds",
        "How late escalation steps fired after their due time (this process's ticks)",
        buckets=LATENESS_BUCKETS,
        registry=registry,
    )
    return registry, lateness
