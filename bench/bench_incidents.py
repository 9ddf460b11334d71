"""Incidents: intake rate and latency over HTTP, time from the 201 to the first SMS handed to Twilio, and
escalation lateness with 10,000 open unacknowledged incidents.

    python bench/bench_incidents.py                                   # temporary SQLite file
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/bench_incidents.py

1. Intake: BENCH_INTAKE_N incidents (default 3,000) at random Beijing streets, POSTed by BENCH_CONCURRENCY
   (default 16) client threads, spread evenly over BENCH_REPLICAS (default 2) uvicorn processes of the real
   app, each on its own port as behind a load balancer, with the demo roster, the dispatcher on and the
   Twilio simulator in a process of its own. Baseline: bench/bare_insert_app.py (validate a body, one INSERT,
   one commit) served the same way, same replicas, count and concurrency.
   The bench prints when the backlog of due steps drained and the last incident's first SMS went out, and
   201 -> first SMS per level (the tick takes the gravest first).
   Steady: an open-loop offered load of BENCH_STEADY_SHARE (default 1/8) of the bare burst rate for
   BENCH_STEADY_SECONDS (60), the backlog (due tier rows not yet paged) printed every second, py-spy sampling one
   replica (a summary of where its CPU goes). Server CPU per incident from /proc (all app processes) next to the
   bare endpoint's per request; the load average next to the figures (the machine is shared).
2. From each 201 to the first SMS the provider accepted: outbox_message.sent_at - when the client got the 201.
3. Lateness: 10,000 open incidents whose next steps fall due spread over one 300 s window; the real
   tick (app.runtime.scheduler.Ticker: every BENCH_TICK seconds, default 1.0 as the setting, and at the next due
   step when that is sooner) runs against a clock that moves with real time; lateness = when a step was
   taken - when it was due.
   Baseline: the bare claim query (SELECT … FOR UPDATE SKIP LOCKED of the due rows, no work).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import demo, migrate
from app.auth.principal import Principal
from app.clock import ManualClock, SystemClock
from app.db import make_engine, transaction
from app.escalation import jobs
from app.escalation.grading import Severity
from app.escalation.rules import schemas as rules_schemas
from app.escalation.rules import service as rules_service
from app.incidents import service as incident_service
from app.incidents.models import IncidentTier
from app.incidents.schemas import IncidentCreate
from app.notify.simulator import SimulatorConfig
from app.org import units as unit_service
from app.org.models import Tier, Unit
from app.runtime.scheduler import Ticker
from bench.benchlib import cpu_seconds, database, free_port, load_average, serve
from bench.benchlib import percentile as pct

INTAKE_N = int(os.environ.get("BENCH_INTAKE_N", "3000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
OPEN_N = int(os.environ.get("BENCH_OPEN_N", "10000"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))  # processes of the app (one per core), clients split evenly
# "1": the tick and the dispatcher in a process of their own, the replicas only take requests.
WORKER = os.environ.get("BENCH_WORKER", "") not in ("", "0")
TICK = float(os.environ.get("BENCH_TICK", "1.0"))
LATENESS_SECONDS = float(os.environ.get("BENCH_LATENESS_SECONDS", "30"))
STEADY_SHARE = float(os.environ.get("BENCH_STEADY_SHARE", "0.125"))  # of the bare burst rate (1/8)
STEADY_SECONDS = float(os.environ.get("BENCH_STEADY_SECONDS", "60"))
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


def open_loop(
    urls: list[str],
    bodies: list[dict[str, object]],
    headers: dict[str, str],
    rate: float,
    every_second: Callable[[], None] | None = None,
) -> tuple[list[float], list[str], dict[int, datetime]]:
    """POST the bodies at a fixed offered `rate` (open loop: each request is sent at its time whatever the earlier
    ones are doing), round-robin over the URLs; `every_second` is called once a second meanwhile."""
    latencies: list[float] = []
    failures: list[str] = []
    answered: dict[int, datetime] = {}
    clients = [httpx.Client(headers=headers, timeout=30) for _ in urls]

    def send(n: int, body: dict[str, object]) -> None:
        t0 = time.perf_counter()
        r = clients[n % len(urls)].post(urls[n % len(urls)], json=body)
        latencies.append(time.perf_counter() - t0)
        if r.status_code != 201:
            failures.append(f"{r.status_code} {r.text[:120]}")
        elif "id" in (answer := r.json()):
            answered[answer["id"]] = datetime.now(UTC)

    start = time.perf_counter()
    next_tick = start + 1
    with ThreadPoolExecutor(64) as pool:
        for n, body in enumerate(bodies):
            due = start + n / rate
            while (now := time.perf_counter()) < due:
                if every_second is not None and now >= next_tick:
                    every_second()
                    next_tick += 1
                time.sleep(min(0.002, max(0.0, due - now)))
            pool.submit(send, n, body)
    for c in clients:
        c.close()
    return latencies, failures, answered


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
        "casualties": {"deaths": rng.choice([0, 0, 0, 1, 3, 10, 30]), "injuries": 0, "trapped": 0, "missing": 0},
    }


SIM_SCRIPT = """
import sys, uvicorn
from app.notify.simulator import SimulatorConfig, standalone
app, _ = standalone(SimulatorConfig.from_env(latency=0.05, send_callbacks=False))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def aware(v: object) -> datetime:
    d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def first_sms(engine: Engine, ids: set[int]) -> dict[int, tuple[str, datetime, datetime]]:
    """For each incident: its level, when it was created and when its first SMS was accepted by the provider."""
    return {i: (sev, created, sent) for i, (sev, created, _, sent) in pages(engine, ids).items()}


def pages(engine: Engine, ids: set[int]) -> dict[int, tuple[str, datetime, datetime, datetime]]:
    """For each incident: its level, when it was created, when the tick wrote its first SMS page to the outbox and
    when the provider accepted its first SMS."""
    with Session(engine) as s:
        rows = s.execute(
            text(
                "SELECT i.id, i.severity, i.created_at, MIN(m.created_at), MIN(m.sent_at) FROM incident i"
                " JOIN outbox_message m ON m.incident_id = i.id AND m.channel = 'sms' WHERE m.sent_at IS NOT NULL"
                " GROUP BY i.id, i.severity, i.created_at"
            )
        ).all()
    return {i: (sev, aware(c), aware(w), aware(sent)) for i, sev, c, w, sent in rows if i in ids}


def backlog(engine: Engine) -> int:
    """Due tier rows not yet paged (first steps and notices owed), as the tick would claim them."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM incident_tier WHERE next_step_at <= :now OR notice_at <= :now"),
                {"now": datetime.now(UTC)},
            ).scalar_one()
        )


class Profiler:
    """py-spy sampling one process for the length of a run; a summary of where its CPU went."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.process: subprocess.Popen[bytes] | None = None
        if Path(exe).exists():
            cmd = [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "50",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                "--gil",  # only the thread holding the GIL: where the process's Python CPU goes, not its waits
            ]
            self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stacks(self) -> list[tuple[list[str], int]] | str:
        """The busy samples (frames root first, count), or why there are none."""
        if self.process is None:
            return "(py-spy not installed)"
        if self.process.poll() is None:
            self.process.wait(timeout=120)
        if not self.out.exists():
            return "(py-spy wrote nothing: it needs ptrace permission)"
        busy = []
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [f for f in stack.split(";") if f]
            # Idle is where a thread waits (its leaf frame), not any stack under a pool worker: the sending threads
            # run under one, and leaving those out hid the provider calls.
            if frames and not any(idle in frames[-1] for idle in IDLE_FRAMES):
                busy.append((frames, int(count)))
        return busy

    def summary(self, top: int = 12) -> list[str]:
        busy = self.stacks()
        if isinstance(busy, str):
            return [busy]
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for frames, n in busy:
            total += n
            leaf = frames[-1]
            own[leaf] = own.get(leaf, 0) + n
            for area in {area_of(f) for f in frames}:
                inclusive[area] = inclusive.get(area, 0) + n
        lines = [f"{total} busy samples (idle waits left out)"]
        lines += [
            f"  {100 * n / total:5.1f} %  in {area}"
            for area, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
        ]
        lines.append("  hottest leaf frames:")
        lines += [f"  {100 * n / total:5.1f} %  {leaf}" for leaf, n in sorted(own.items(), key=lambda kv: -kv[1])[:8]]
        return lines


IDLE_FRAMES = ("select (selectors.py", "wait (threading.py", "_worker (concurrent", "epoll", "sleep", "poll (")
AREAS = (
    ("app/escalation/", "app.escalation (tick, step machine)"),
    ("app/incidents/", "app.incidents (intake, views)"),
    ("app/notify/dispatcher", "app.notify.dispatcher"),
    ("app/notify/", "app.notify (outbox, templates, channels)"),
    ("app/roster/", "app.roster (who is on duty)"),
    ("app/auth/", "app.auth"),
    ("app/", "app (other)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("psycopg", "psycopg"),
    ("pydantic", "pydantic"),
    ("fastapi/", "FastAPI"),
    ("starlette/", "Starlette"),
    ("uvicorn/", "uvicorn"),
    ("twilio/", "twilio SDK"),
    ("httpx/", "httpx"),
    ("httpcore/", "httpx"),
)


def area_of(frame: str) -> str:
    for needle, name in AREAS:
        if needle in frame:
            return name
    return "other"


def start_app(env: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """The replicas that take the requests; with BENCH_WORKER also one process that runs only the tick and the
    dispatcher (the replicas then run neither, and hear of due steps by NOTIFY). The worker is listed last."""
    ports = [free_port() for _ in range(REPLICAS)]
    api = env | ({"DUTYLINE_SCHEDULER": "false", "DUTYLINE_DISPATCHER": "false"} if WORKER else {})
    servers = [
        serve(["app.main:create_app", "--factory"], api | {"PUBLIC_BASE_URL": f"http://127.0.0.1:{p}"}, p)
        for p in ports
    ]
    if WORKER:
        port = free_port()
        servers.append(
            serve(["app.main:create_app", "--factory"], env | {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}, port)
        )
    return servers, [f"http://127.0.0.1:{p}/api/v1/incidents" for p in ports]


def intake(url: str, streets: list[str], key: str) -> None:
    rng = random.Random(7)
    engine = make_engine(url)
    sim_port = free_port()
    # The Twilio simulator runs in its own process, as Twilio would (50 ms per API call).
    sim_config = SimulatorConfig()  # random credentials, handed to the simulator's process
    sim_env = {**os.environ, **sim_config.credentials_env()}
    sim = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT, str(sim_port)], cwd=str(ROOT), env=sim_env)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DUTYLINE_SECRET_KEY": SECRET,
        "DUTYLINE_LOG_LEVEL": "WARNING",
        "DUTYLINE_SCHEDULER": "true",  # the tick pages, woken by each intake's commit (and by other replicas')
        "DUTYLINE_SIMULATOR": "off",
        "TWILIO_ACCOUNT_SID": sim_config.account_sid,
        "TWILIO_AUTH_TOKEN": sim_config.auth_token,
        "TWILIO_FROM_NUMBER": sim_config.service_number,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{sim_port}/sim",
        "DUTYLINE_SMS_ROUTES": "*=twilio",  # the simulator process speaks Twilio's API
        "DUTYLINE_VOICE_ROUTES": "*=twilio",
        "DUTYLINE_DISPATCH_CONCURRENCY": "32",
        # 13,000 incidents in a few minutes put hundreds of pages on each district's duty officer: at the default
        # budget (8 SMS a number a day) nearly every page would become a call. What is measured here is the SMS
        # path, so the budget is the highest the setting takes.
        "DUTYLINE_SMS_DAILY_BUDGET": "1000",
    }
    print(f"load average before the run: {load_average()} (2 cores shared with other engineers)")
    # Baseline first, served the same way: the bare endpoint's burst rate, latency and CPU per request.
    bare_ports = [free_port() for _ in range(REPLICAS)]
    bare = [serve(["bench.bare_insert_app:app"], env, p) for p in bare_ports]
    bare_urls = [f"http://127.0.0.1:{p}/bare" for p in bare_ports]
    bodies = [body(rng, streets, n) for n in range(INTAKE_N)]
    try:
        c0 = cpu_seconds([b.pid for b in bare])
        b_rate, b_lat, b_fail, _ = load(bare_urls, bodies, {})
        b_cpu = (cpu_seconds([b.pid for b in bare]) - c0) / len(bodies)
        steady_rate = b_rate * STEADY_SHARE
        steady_n = int(steady_rate * STEADY_SECONDS)
        steady_bodies = [body(rng, streets, 1_000_000 + n) for n in range(steady_n)]
        bs_lat, _, _ = open_loop(bare_urls, steady_bodies, {}, steady_rate)
    finally:
        stop(bare)

    # Each replica a uvicorn process of its own on its own port (uvicorn's --workers share one socket, and
    # 16 keep-alive clients then pile onto one process: measured 80 % of the work on one of two workers).
    servers, urls = start_app(env)
    pids = [s.pid for s in servers]
    try:
        time.sleep(1)
        la = load_average()
        c0, s0 = cpu_seconds(pids), cpu_seconds([sim.pid])
        burst_start = datetime.now(UTC)
        rate, lat, failures, answered = load(urls, bodies, {"X-API-Key": key})
        burst_end = datetime.now(UTC)
        drained_at = burst_end
        while backlog(engine) and (datetime.now(UTC) - burst_end).total_seconds() < 120:
            time.sleep(0.05)
        drained_at = datetime.now(UTC)
        time.sleep(3)  # let the dispatcher hand the last pages to the simulator
        cpu = (cpu_seconds(pids) - c0) / len(bodies)
        sim_cpu = (cpu_seconds([sim.pid]) - s0) / len(bodies)
        burst_sms = first_sms(engine, set(answered))

        # Steady: an open-loop offered load of STEADY_SHARE of the bare burst rate, for STEADY_SECONDS.
        time.sleep(2)
        seen: list[int] = []
        profiled = {"one replica": pids[0]} | ({"the worker (tick and dispatcher)": pids[-1]} if WORKER else {})
        profiles = {what: Profiler(pid, STEADY_SECONDS, Path(tempfile.mkdtemp()) / "steady.raw")
                    for what, pid in profiled.items()}  # fmt: skip
        c1 = cpu_seconds(pids)
        s_la = load_average()
        s_lat, s_fail, s_answered = open_loop(
            urls, steady_bodies, {"X-API-Key": key}, steady_rate, every_second=lambda: seen.append(backlog(engine))
        )
        s_cpu = (cpu_seconds(pids) - c1) / max(1, len(steady_bodies))
        time.sleep(3)
        steady_pages = pages(engine, set(s_answered))
        steady_sms = {i: (sev, c, sent) for i, (sev, c, _, sent) in steady_pages.items()}
        profile_lines = {what: profile.summary() for what, profile in profiles.items()}
    finally:
        stop([*servers, sim])
    engine.dispose()

    to_sms = [(sent - answered[i]).total_seconds() for i, (_, _, sent) in burst_sms.items()]
    print(
        f"burst: {INTAKE_N} incidents from {CONCURRENCY} clients over {REPLICAS} replicas, dispatcher and tick on,"
        f" Twilio simulator in its own process; failures {len(failures)}; load average {la}"
    )
    print(f"  rate        {rate:8.0f} /s   baseline {b_rate:8.0f} /s   ratio {rate / b_rate:5.2f}   target >= 0.4")
    print(f"  latency p50 {pct(lat, 0.5) * 1000:8.1f} ms  baseline {pct(b_lat, 0.5) * 1000:8.1f} ms")
    print(
        f"  latency p99 {pct(lat, 0.99) * 1000:8.1f} ms  baseline {pct(b_lat, 0.99) * 1000:8.1f} ms   ratio"
        f" {pct(lat, 0.99) / pct(b_lat, 0.99):5.2f}   target <= 3"
    )
    print(
        f"  server CPU per incident {cpu * 1000:6.2f} ms (all app processes, /proc)   baseline per request"
        f" {b_cpu * 1000:6.2f} ms   simulator {sim_cpu * 1000:6.2f} ms per incident"
    )
    print(
        f"  201 -> first SMS ({len(to_sms)} incidents): p50 {pct(to_sms, 0.5) * 1000:.0f} ms,"
        f" p99 {pct(to_sms, 0.99) * 1000:.0f} ms, max {max(to_sms, default=0) * 1000:.0f} ms"
    )
    last = max((sent for _, _, sent in burst_sms.values()), default=burst_end)
    print(
        f"  backlog of due steps drained {(drained_at - burst_end).total_seconds():.1f} s after the last 201;"
        f" the last incident's first SMS went out {(last - burst_end).total_seconds():.1f} s after it"
        f" ({(last - burst_start).total_seconds():.1f} s after the burst began)"
    )
    for level in ("I", "II", "III", "IV"):
        waits = [(sent - answered[i]).total_seconds() for i, (sev, _, sent) in burst_sms.items() if sev == level]
        if waits:
            print(
                f"    level {level:3} ({len(waits):4}): 201 -> first SMS p50 {pct(waits, 0.5) * 1000:6.0f} ms,"
                f" p99 {pct(waits, 0.99) * 1000:6.0f} ms"
            )
    s_sms = [(sent - s_answered[i]).total_seconds() for i, (_, _, sent) in steady_sms.items()]
    print(
        f"steady: open loop at {steady_rate:.0f}/s ({STEADY_SHARE:g} of the bare burst rate) for"
        f" {STEADY_SECONDS:.0f} s, {len(steady_bodies)} incidents, failures {len(s_fail)}; load average {s_la}"
    )
    print(
        f"  intake latency p50 {pct(s_lat, 0.5) * 1000:6.1f} ms  p99 {pct(s_lat, 0.99) * 1000:6.1f} ms   baseline"
        f" (bare, same offered load) p50 {pct(bs_lat, 0.5) * 1000:6.1f} ms  p99 {pct(bs_lat, 0.99) * 1000:6.1f} ms"
        f"   target p99 < 100 ms"
    )
    print(
        f"  201 -> first SMS accepted by the provider ({len(s_sms)}): p50 {pct(s_sms, 0.5) * 1000:.0f} ms,"
        f" p99 {pct(s_sms, 0.99) * 1000:.0f} ms, max {max(s_sms, default=0) * 1000:.0f} ms   target p99 < 500 ms"
    )
    tick_lag = [(written - created).total_seconds() for _, created, written, _ in steady_pages.values()]
    outbox_lag = [(sent - written).total_seconds() for _, _, written, sent in steady_pages.values()]
    print(
        f"    where it waits: intake commit -> page written by the tick p50 {pct(tick_lag, 0.5) * 1000:.0f} ms,"
        f" p99 {pct(tick_lag, 0.99) * 1000:.0f} ms; page written -> accepted by the provider"
        f" p50 {pct(outbox_lag, 0.5) * 1000:.0f} ms, p99 {pct(outbox_lag, 0.99) * 1000:.0f} ms"
    )
    print(
        f"  server CPU per incident {s_cpu * 1000:6.2f} ms   baseline (bare burst) {b_cpu * 1000:6.2f} ms per request"
    )
    print(f"  backlog (due tier rows not yet paged) each second: {' '.join(str(n) for n in seen)}")
    for what, lines in profile_lines.items():
        print(f"  profile of {what} during the steady run (py-spy):")
        for line in lines:
            print("   ", line)
    if failures or b_fail or s_fail:
        print("  first failures:", (failures or b_fail or s_fail)[:3])


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
    for start in range(0, OPEN_N, 25):
        with transaction(engine) as s:
            for n in range(start, min(OPEN_N, start + 25)):
                data = IncidentCreate.model_validate(body(rng, streets, 10_000_000 + n))
                incident_service.report(s, clock=clock, actor=actor, data=data)
                clock.advance(step)
        jobs.run_tick(engine, clock=clock)  # their first steps (the tick pages), at the time they were reported
    made = time.perf_counter() - started
    with Session(engine) as s:
        due_rows = s.execute(select(IncidentTier.id).where(col(IncidentTier.next_step_at).is_not(None))).all()
    # Real time from here on: the clock reads t0 + elapsed, so the earliest steps fall due at once.
    real = ShiftedClock(datetime.now(UTC) - t0)
    collected = Collect()
    ticker = Ticker(engine, real, TICK, collected)
    claim: list[float] = []
    ticks = 0
    base = time.monotonic()
    while time.monotonic() - base < LATENESS_SECONDS:
        with transaction(engine) as s:
            c0 = time.perf_counter()
            s.execute(
                select(IncidentTier.id)
                .where(col(IncidentTier.next_step_at) <= real.now(), col(IncidentTier.acknowledged_at).is_(None))
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


def install(url: str) -> tuple[str, list[str]]:
    """The 360 units with the demo roster and the default response rules: the 119 agency's key and the streets."""
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
            document=rules_schemas.default_document().model_dump(mode="json"),
        )
    with Session(engine) as s:
        streets = [u.code for u in s.exec(select(Unit).where(Unit.tier == Tier.street))]
    engine.dispose()
    key = next(line.split()[1] for line in report.splitlines() if line.strip().startswith("119 "))
    return key, streets


def main() -> None:
    url, drop = database("incidents")
    try:
        key, streets = install(url)
        print(f"database: {make_url(url).get_backend_name()}; 360 units with the demo roster")
        intake(url, streets, key)
        lateness(url, streets)
    finally:
        drop()


if __name__ == "__main__":
    main()
