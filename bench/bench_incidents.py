"""Incidents: intake rate and latency over HTTP, time from the 201 to the first SMS handed to Twilio, and
escalation lateness with 10,000 open unacknowledged incidents.

    python bench/bench_incidents.py                                   # temporary SQLite file
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/bench_incidents.py

1. Intake: BENCH_INTAKE_N incidents (default 3,000) at random Beijing streets, POSTed by BENCH_CONCURRENCY
   (default 16) client threads, spread evenly over BENCH_REPLICAS (default 2) uvicorn processes of the real
   app, each on its own port as behind a load balancer, with the demo roster, the dispatcher on and the
   Twilio simulator in a process of its own. Baseline: bench/bare_insert_app.py (validate a body, one INSERT,
   one commit) served the same way, same replicas, count and concurrency.
2. From each 201 to the first SMS the provider accepted: outbox_message.sent_at - incident.created_at.
3. Lateness: 10,000 open incidents whose next steps fall due spread over one 300 s window; the real
   tick (app.runtime.scheduler.Ticker: every BENCH_TICK seconds, default 1.0 as the setting, and at the next due
   step when that is sooner) runs against a clock that moves with real time; lateness = when a step was
   taken - when it was due.
   Baseline: the bare claim query (SELECT … FOR UPDATE SKIP LOCKED of the due rows, no work).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import demo, migrate
from app.auth.principal import Principal
from app.clock import ManualClock, SystemClock
from app.db import make_engine, transaction
from app.escalation import rules as rules_service
from app.escalation.grading import Severity
from app.incidents import service as incident_service
from app.incidents.models import IncidentTier
from app.incidents.schemas import IncidentCreate
from app.notify.simulator import SimulatorConfig
from app.org import units as unit_service
from app.org.models import Tier, Unit
from app.runtime.scheduler import Ticker
from bench.benchlib import database, free_port, serve
from bench.benchlib import percentile as pct

INTAKE_N = int(os.environ.get("BENCH_INTAKE_N", "3000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
OPEN_N = int(os.environ.get("BENCH_OPEN_N", "10000"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))  # processes of the app (one per core), clients split evenly
TICK = float(os.environ.get("BENCH_TICK", "1.0"))
LATENESS_SECONDS = float(os.environ.get("BENCH_LATENESS_SECONDS", "30"))
SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"


def load(
    urls: list[str], bodies: list[dict[str, object]], headers: dict[str, str]
) -> tuple[float, list[float], list[str], dict[int, datetime]]:
    """POST every body with CONCURRENCY threads (one client each, the clients spread evenly over the replicas'
    URLs, as a load balancer would); the rate, each latency, the failures and when each 201 arrived (by id)."""
    chunks = [bodies[i::CONCURRENCY] for i in range(CONCURRENCY)]
    latencies: list[float] = []
    failures: list[str] = []
    answered: dict[int, datetime] = {}

    def worker(n: int) -> None:
        chunk, url = chunks[n], urls[n % len(urls)]
        with httpx.Client(headers=headers, timeout=30) as http:
            for body in chunk:
                t0 = time.perf_counter()
                r = http.post(url, json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    failures.append(f"{r.status_code} {r.text[:120]}")
                elif "id" in (answer := r.json()):
                    answered[answer["id"]] = datetime.now(UTC)

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(worker, range(CONCURRENCY)))
    return len(bodies) / (time.perf_counter() - start), latencies, failures, answered


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def body(rng: random.Random, streets: list[str], n: int) -> dict[str, object]:
    return {
        "external_id": f"bench-{n}",
        "category": rng.choice(["fire", "gas", "traffic", "hospital"]),
        "title": "基准测试事件",
        "unit_code": rng.choice(streets),
        "occurred_at": datetime.now(UTC).isoformat(),
        "casualties": {"deaths": rng.choice([0, 0, 0, 1, 3]), "injuries": 0, "trapped": 0, "missing": 0},
    }


SIM_SCRIPT = """
import sys, uvicorn
from app.notify.simulator import SimulatorConfig, standalone
app, _ = standalone(SimulatorConfig(latency=0.05, send_callbacks=False))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def intake(url: str, streets: list[str], key: str) -> None:
    rng = random.Random(7)
    engine = make_engine(url)
    sim_port = free_port()
    # The Twilio simulator runs in its own process, as Twilio would (50 ms per API call).
    sim = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT, str(sim_port)], cwd=str(ROOT))
    sim_config = SimulatorConfig()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DUTYLINE_SECRET_KEY": SECRET,
        "DUTYLINE_LOG_LEVEL": "WARNING",
        "DUTYLINE_SCHEDULER": "false",
        "DUTYLINE_SIMULATOR": "off",
        "TWILIO_ACCOUNT_SID": sim_config.account_sid,
        "TWILIO_AUTH_TOKEN": sim_config.auth_token,
        "TWILIO_FROM_NUMBER": sim_config.service_number,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{sim_port}/sim",
        "DUTYLINE_DISPATCH_CONCURRENCY": "32",
    }
    # Each replica a uvicorn process of its own on its own port (uvicorn's --workers share one socket, and
    # 16 keep-alive clients then pile onto one process: measured 80 % of the work on one of two workers).
    ports = [free_port() for _ in range(REPLICAS)]
    servers = [
        serve(["app.main:create_app", "--factory"], env | {"PUBLIC_BASE_URL": f"http://127.0.0.1:{p}"}, p)
        for p in ports
    ]
    try:
        bodies = [body(rng, streets, n) for n in range(INTAKE_N)]
        urls = [f"http://127.0.0.1:{p}/api/v1/incidents" for p in ports]
        rate, lat, failures, answered = load(urls, bodies, {"X-API-Key": key})
        time.sleep(3)  # let the dispatcher hand the last pages to the simulator
    finally:
        stop([*servers, sim])
    bare_ports = [free_port() for _ in range(REPLICAS)]
    bare = [serve(["bench.bare_insert_app:app"], env, p) for p in bare_ports]
    try:
        b_rate, b_lat, b_fail, _ = load([f"http://127.0.0.1:{p}/bare" for p in bare_ports], bodies, {})
    finally:
        stop(bare)
    with Session(engine) as s:
        rows = s.execute(
            text(
                "SELECT i.id, i.created_at, MIN(m.sent_at) FROM incident i JOIN outbox_message m"
                " ON m.incident_id = i.id AND m.channel = 'sms' WHERE m.sent_at IS NOT NULL GROUP BY i.id, i.created_at"
            )
        ).all()

    def aware(v: object) -> datetime:
        d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    # The figure: from the 201 (as the client saw it) to the first SMS the provider took. The SMS can go
    # out before the 201 arrives (negative values). From the start of intake (created_at) for comparison.
    to_sms = [(aware(sent) - answered[i]).total_seconds() for i, _, sent in rows if i in answered]
    from_start = [(aware(sent) - aware(created)).total_seconds() for _, created, sent in rows]
    engine.dispose()
    print(f"intake: {INTAKE_N} incidents, concurrency {CONCURRENCY}, {REPLICAS} replica(s), failures {len(failures)}")
    print(f"  rate        {rate:8.0f} /s   baseline {b_rate:8.0f} /s   ratio {rate / b_rate:5.2f}   target >= 300 /s")
    print(f"  latency p50 {pct(lat, 0.5) * 1000:8.1f} ms  baseline {pct(b_lat, 0.5) * 1000:8.1f} ms")
    print(
        f"  latency p99 {pct(lat, 0.99) * 1000:8.1f} ms  baseline {pct(b_lat, 0.99) * 1000:8.1f} ms   target < 100 ms"
    )
    print(
        f"201 -> first SMS accepted by the provider ({len(to_sms)} incidents): p50 {pct(to_sms, 0.5) * 1000:.0f} ms,"
        f" p99 {pct(to_sms, 0.99) * 1000:.0f} ms, max {max(to_sms, default=0) * 1000:.0f} ms   target p99 < 1 s"
    )
    print(
        f"  (from the start of intake: p50 {pct(from_start, 0.5) * 1000:.0f} ms,"
        f" p99 {pct(from_start, 0.99) * 1000:.0f} ms, max {max(from_start, default=0) * 1000:.0f} ms)"
    )
    if failures or b_fail:
        print("  first failures:", (failures or b_fail)[:3])


class ShiftedClock:
    """Real time, shifted back by a fixed amount."""

    def __init__(self, shift: timedelta) -> None:
        self.shift = shift

    def now(self) -> datetime:
        return datetime.now(UTC) - self.shift


class Collect:
    """Stands in for the lateness histogram."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, value: float) -> None:
        self.values.append(value)


def lateness(url: str, streets: list[str]) -> None:
    engine = make_engine(url)
    with Session(engine) as s:
        window = float(rules_service.current(s).level(Severity.IV).ack_window_seconds)
    t0 = datetime.now(UTC)
    clock = ManualClock(t0 - timedelta(seconds=window))
    actor = Principal.system("bench")
    rng = random.Random(11)
    started = time.perf_counter()
    step = timedelta(seconds=window / OPEN_N)
    for start in range(0, OPEN_N, 500):
        with transaction(engine) as s:
            for n in range(start, min(OPEN_N, start + 500)):
                data = IncidentCreate.model_validate(body(rng, streets, 10_000_000 + n))
                incident_service.report(s, clock=clock, actor=actor, data=data)
                clock.advance(step)
    made = time.perf_counter() - started
    with Session(engine) as s:
        due_rows = s.execute(select(IncidentTier.id).where(col(IncidentTier.next_step_at).is_not(None))).all()
    # Real time from here on: the clock reads t0 + elapsed, so the earliest steps fall due at once.
    clock = ShiftedClock(datetime.now(UTC) - t0)  # type: ignore[assignment]
    collected = Collect()
    ticker = Ticker(engine, clock, TICK, collected)  # type: ignore[arg-type]
    claim: list[float] = []
    ticks = 0
    base = time.monotonic()
    while time.monotonic() - base < LATENESS_SECONDS:
        with transaction(engine) as s:
            c0 = time.perf_counter()
            s.execute(
                select(IncidentTier.id)
                .where(col(IncidentTier.next_step_at) <= clock.now(), col(IncidentTier.acknowledged_at).is_(None))
                .limit(200)
                .with_for_update(skip_locked=True)
            ).all()
            claim.append(time.perf_counter() - c0)
            s.rollback()
        started = time.monotonic()
        wait = ticker.run()  # what the scheduler does: every TICK, and at the next due step when sooner
        ticks += 1
        time.sleep(max(0.0, (wait if wait is not None else TICK) - (time.monotonic() - started)))
    late = collected.values
    engine.dispose()
    print(
        f"lateness: {OPEN_N} open incidents ({len(due_rows)} timers; made in {made:.0f} s), due spread over"
        f" {window:.0f} s, tick every {TICK} s, {LATENESS_SECONDS:.0f} s of real time, {ticks} ticks"
    )
    print(
        f"  steps {len(late)} ({len(late) / LATENESS_SECONDS:.0f}/s)   lateness p50 {pct(late, 0.5):.3f} s  "
        f"p99 {pct(late, 0.99):.3f} s  max {max(late, default=0):.3f} s   target p99 < 1 s"
    )
    print(f"  baseline: the bare claim query p50 {pct(claim, 0.5) * 1000:.1f} ms, p99 {pct(claim, 0.99) * 1000:.1f} ms")


def main() -> None:
    url, drop = database("incidents")
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        with transaction(engine) as s:
            unit_service.load_units(s, unit_service.read_units_file(unit_service.default_data_path()))
            report = demo.install(s, clock=ManualClock(datetime.now(UTC)))
            # Back to the default response rules (the demo shortens the windows to 60 s).
            rules_service.replace(
                s,
                clock=SystemClock(),
                actor=Principal.system("bench"),
                document=rules_service.default_document().model_dump(mode="json"),
            )
        key = next(line.split()[1] for line in report.splitlines() if line.strip().startswith("119 "))
        with Session(engine) as s:
            streets = [u.code for u in s.exec(select(Unit).where(Unit.tier == Tier.street))]
        engine.dispose()
        print(f"database: {make_url(url).get_backend_name()}; 360 units with the demo roster")
        intake(url, streets, key)
        lateness(url, streets)
    finally:
        drop()


if __name__ == "__main__":
    main()
