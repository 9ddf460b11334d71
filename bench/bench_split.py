"""Which process takes the cores: the CPU of each part of the incident path, measured apart.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/bench_split.py

One replica that only takes requests (DUTYLINE_SCHEDULER=false, DUTYLINE_DISPATCHER=false), one worker that only
ticks and sends (it hears of each intake by NOTIFY), the Twilio simulator in a process of its own (50 ms per API
call), as docs/operations.md describes. BENCH_SPLIT_N incidents (default 1,500) are offered at BENCH_SPLIT_RATE
(default 40 /s, open loop, well under what the machine carries so that nothing queues); the bench waits until every
page has gone out and prints each process's CPU (user + system, from /proc) per incident and per message, the
201 -> first SMS latency, and a py-spy profile of the replica and of the worker: the application frames that hold
the GIL the longest, inclusive of what they call.
Baseline: bench/bare_insert_app.py (validate a body, one INSERT, one commit) served the same way, its CPU per
request at the same offered load.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import make_engine
from app.notify.simulator import SimulatorConfig
from bench.bench_incidents import SECRET, SIM_SCRIPT, Profiler, backlog, body, install, open_loop, pages, stop
from bench.benchlib import cpu_seconds, database, free_port, load_average, serve
from bench.benchlib import percentile as pct

N = int(os.environ.get("BENCH_SPLIT_N", "1500"))
RATE = float(os.environ.get("BENCH_SPLIT_RATE", "40"))
TOP = int(os.environ.get("BENCH_SPLIT_TOP", "14"))


def hottest(profile: Profiler, top: int = TOP) -> list[str]:
    """The application's frames (function and line) by the share of GIL samples spent in them or below them."""
    busy = profile.stacks()
    if isinstance(busy, str):
        return [busy]
    total = sum(n for _, n in busy)
    inclusive: dict[str, int] = {}
    for frames, n in busy:
        for frame in {f for f in frames if "(app/" in f}:
            inclusive[frame] = inclusive.get(frame, 0) + n
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    return [f"{total} busy samples"] + [f"{100 * n / max(1, total):5.1f} %  {frame}" for frame, n in ranked]


def run(url: str, key: str, streets: list[str]) -> None:
    rng = random.Random(7)
    bodies = [body(rng, streets, n) for n in range(N)]
    sim_port = free_port()
    sim_config = SimulatorConfig()
    sim_env = {**os.environ, **sim_config.credentials_env()}
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DUTYLINE_SECRET_KEY": SECRET,
        "DUTYLINE_LOG_LEVEL": "WARNING",
        "DUTYLINE_SIMULATOR": "off",
        "TWILIO_ACCOUNT_SID": sim_config.account_sid,
        "TWILIO_AUTH_TOKEN": sim_config.auth_token,
        "TWILIO_FROM_NUMBER": sim_config.service_number,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{sim_port}/sim",
        "DUTYLINE_SMS_ROUTES": "*=twilio",
        "DUTYLINE_VOICE_ROUTES": "*=twilio",
        "DUTYLINE_DISPATCH_CONCURRENCY": "32",
        "DUTYLINE_SMS_DAILY_BUDGET": "1000",  # as bench_incidents: the SMS path is measured, not the budget
    }
    print(f"load average before the run: {load_average()}")
    bare_port = free_port()
    bare = serve(["bench.bare_insert_app:app"], env, bare_port)
    try:
        warm = [body(rng, streets, 2_000_000 + n) for n in range(100)]
        open_loop([f"http://127.0.0.1:{bare_port}/bare"], warm, {}, RATE * 4)
        b0 = cpu_seconds([bare.pid])
        bare_lat, _, _ = open_loop([f"http://127.0.0.1:{bare_port}/bare"], bodies, {}, RATE)
        bare_cpu = (cpu_seconds([bare.pid]) - b0) / N
    finally:
        stop([bare])

    sim = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT, str(sim_port)], cwd=str(ROOT), env=sim_env)
    rp, wp = free_port(), free_port()
    only_requests = {"DUTYLINE_SCHEDULER": "false", "DUTYLINE_DISPATCHER": "false"}
    replica = serve(
        ["app.main:create_app", "--factory"], env | only_requests | {"PUBLIC_BASE_URL": f"http://127.0.0.1:{rp}"}, rp
    )
    worker = serve(
        ["app.main:create_app", "--factory"],
        env | {"DUTYLINE_SCHEDULER": "true", "PUBLIC_BASE_URL": f"http://127.0.0.1:{wp}"},
        wp,
    )
    engine = make_engine(url)
    intake = f"http://127.0.0.1:{rp}/api/v1/incidents"
    try:
        # Warm both (imports, caches, prepared statements) before anything is measured.
        open_loop([intake], [body(rng, streets, 3_000_000 + n) for n in range(100)], {"X-API-Key": key}, RATE)
        time.sleep(3)
        seconds = N / RATE + 10
        tmp = Path(tempfile.mkdtemp())
        profiles = {"replica": Profiler(replica.pid, seconds, tmp / "replica.raw"),
                    "worker": Profiler(worker.pid, seconds, tmp / "worker.raw")}  # fmt: skip
        c0 = {p: cpu_seconds([p.pid]) for p in (replica, worker, sim)}
        la = load_average()
        latencies, failures, answered = open_loop([intake], bodies, {"X-API-Key": key}, RATE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                unsent = conn.execute(
                    text("SELECT count(*) FROM outbox_message WHERE status IN ('queued', 'sending')")
                ).scalar_one()
            if not unsent and not backlog(engine):
                break
            time.sleep(0.2)
        time.sleep(1)
        cpu = {p: cpu_seconds([p.pid]) - c0[p] for p in (replica, worker, sim)}
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT incident_id, channel FROM outbox_message WHERE sent_at IS NOT NULL")).all()
        sent = Counter(channel for incident_id, channel in rows if incident_id in answered)  # not the warm-up's
        first = pages(engine, set(answered))
    finally:
        stop([replica, worker, sim])
        engine.dispose()
    messages = sum(sent.values())
    to_sms = [(sms - answered[i]).total_seconds() for i, (_, _, _, sms) in first.items()]
    print(f"{N} incidents offered at {RATE:g}/s, failures {len(failures)}; load average {la}")
    print(f"  sent: {', '.join(f'{n} {channel}' for channel, n in sorted(sent.items()))}")
    print(
        f"  intake p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 {pct(latencies, 0.99) * 1000:.1f} ms"
        f"   baseline p50 {pct(bare_lat, 0.5) * 1000:.1f} ms, p99 {pct(bare_lat, 0.99) * 1000:.1f} ms"
    )
    print(
        f"  201 -> first SMS ({len(to_sms)}): p50 {pct(to_sms, 0.5) * 1000:.0f} ms,"
        f" p99 {pct(to_sms, 0.99) * 1000:.0f} ms"
    )
    print("  CPU (user + system, /proc):")
    print(
        f"    replica (intake)         {cpu[replica] / N * 1000:6.2f} ms per incident"
        f"   baseline {bare_cpu * 1000:.2f} ms per request"
    )
    print(
        f"    worker (tick, dispatch)  {cpu[worker] / N * 1000:6.2f} ms per incident"
        f"   {cpu[worker] / max(1, messages) * 1000:.2f} ms per message"
    )
    print(
        f"    simulator                {cpu[sim] / N * 1000:6.2f} ms per incident"
        f"   {cpu[sim] / max(1, messages) * 1000:.2f} ms per message"
    )
    for what, profile in profiles.items():
        print(f"  profile of the {what} (py-spy --gil):")
        for line in hottest(profile):
            print("   ", line)
    if failures:
        print("  first failures:", failures[:3])


def main() -> None:
    url, drop = database("split")
    try:
        key, streets = install(url)
        run(url, key, streets)
    finally:
        drop()


if __name__ == "__main__":
    main()
