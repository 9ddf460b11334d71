"""The reliability drills (issue 7). Each is a function with a full and a short size; see docs/reliability.md.

    .venv/bin/python drills/drills.py                 # the full drills (make drills)
    .venv/bin/python drills/drills.py --short         # the short ones (make drills-short, CI)
    .venv/bin/python drills/drills.py --short storm crash

Every drill runs on a fresh PostgreSQL schema (DRILLS_DATABASE_URL, default the local test database) with real
`dutyline serve` processes and the Twilio simulator in its own process, prints a summary of counts, and the
script exits non-zero when an invariant fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from common import (  # drills/ is on sys.path: the script runs from it
    BIN,
    LOGS,
    ROOT,
    SIM,
    Outcome,
    Replica,
    RssSampler,
    Simulator,
    TcpProxy,
    engine_for,
    free_port,
    fresh_schema,
    install,
    log,
    replica_env,
    storm,
    verify_pages,
    wait_settled,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Size:
    incidents: int
    replicas: int
    rate: float  # incidents per second offered
    window: int  # ack window, whole seconds
    outage: float  # database outage (s)
    provider_down: float  # simulator unreachable (s)
    fuzz_examples: int  # schemathesis examples per operation
    # The storm's lateness target (p99 < 1 s) fails the full drill; the short one (CI, on a shared machine
    # whose timing nobody controls) prints it only. Lost, skipped and duplicate pages fail both.
    enforce_lateness: bool


FULL = Size(
    incidents=2000, replicas=3, rate=15, window=10, outage=20, provider_down=60, fuzz_examples=50, enforce_lateness=True
)
SHORT = Size(
    incidents=300, replicas=2, rate=15, window=5, outage=8, provider_down=12, fuzz_examples=10, enforce_lateness=False
)
LATENESS_P99_LIMIT = 1.0
CALL_BOUND = 10.0  # no API answer during an outage may take longer than this


def _start_replicas(drill: str, url: str, sim: Simulator, count: int, **extra: str) -> list[Replica]:
    replicas = []
    for n in range(count):
        port = free_port()
        replicas.append(Replica(f"{drill}-r{n + 1}", replica_env(url, sim, port, **extra), port).start())
    return replicas


def _stop(replicas: list[Replica], sim: Simulator) -> None:
    for r in replicas:
        r.stop()
    sim.stop()


def _settle_bound(size: Size) -> float:
    return 7 * size.window + 60


def _allowed_duplicates(url: str, dups: dict[str, int], out: Outcome, *, none_at_all: bool = False) -> None:
    """Duplicates are allowed only inside the documented at-least-once window: a row sent twice must have been
    taken again after an interrupted attempt (attempts > 1, i.e. a lease that ran out or an uncertain send),
    and at most once per extra attempt. With `none_at_all` (the crash drill: SMS and calls are both looked up
    at the provider before a retry) not even that."""
    if not dups:
        return
    if none_at_all:
        out.check(False, f"{len(dups)} pages were sent twice (none may be), e.g. {sorted(dups)[:3]}")
    engine = engine_for(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, channel, attempts, recipient, last_error FROM outbox_message WHERE id = ANY(:ids)"),
            {"ids": [int(k) for k in dups]},
        ).all()
        busiest = conn.execute(
            text("SELECT recipient, count(*) FROM outbox_message GROUP BY recipient ORDER BY 2 DESC LIMIT 3")
        ).all()
    engine.dispose()
    out.counts["duplicated rows (id channel attempts to)"] = [f"{r[0]} {r[1]} {r[2]} {r[3]}" for r in rows[:5]]
    out.counts["busiest recipients"] = [f"{r[0]}: {r[1]}" for r in busiest]
    attempts = {str(r[0]): (r[1], r[2]) for r in rows}
    outside = [k for k, n in dups.items() if k not in attempts or n > attempts[k][1]]
    by_channel = Counter(attempts[k][0] for k in dups if k in attempts)
    out.counts["duplicates by channel"] = dict(by_channel)
    out.check(not outside, f"{len(outside)} duplicates outside the at-least-once window, e.g. {outside[:3]}")


# ---- 1. several replicas, a storm nobody answers ----


def drill_storm(size: Size) -> Outcome:
    out = Outcome(f"storm: {size.incidents} incidents on {size.replicas} replicas")
    with fresh_schema() as url:
        inst = install(url, window=size.window)
        sim = Simulator()
        replicas = _start_replicas("storm", url, sim, size.replicas)
        try:
            with RssSampler(replicas) as rss:
                bases = [r.base for r in replicas]
                log(f"storm: {size.incidents} incidents at {size.rate}/s, window {size.window} s")
                intake = storm(inst, lambda: bases, count=size.incidents, rate=size.rate, tag="storm")
                out.counts["intake statuses"] = dict(intake.statuses)
                out.counts["intake seconds"] = round(intake.elapsed, 1)
                waited = wait_settled(url, timeout=_settle_bound(size))
                log(f"settled {waited:.0f} s after the last incident")
            out.counts["memory per replica (peak RSS)"] = rss.report()
            out.check(intake.statuses.get("201", 0) == size.incidents, f"intake answers {dict(intake.statuses)}")
            dups = verify_pages(url, sim, out, accepted=intake.accepted, window=inst.window)
            out.check(not dups, f"{len(dups)} pages were sent more than once")
            p99 = out.counts.pop("_lateness_p99")
            if size.enforce_lateness:
                out.check(p99 < LATENESS_P99_LIMIT, f"escalation lateness p99 is not under {LATENESS_P99_LIMIT} s")
            else:
                out.counts["lateness target p99 < 1 s"] = "met" if p99 < LATENESS_P99_LIMIT else "MISSED (not enforced)"
        finally:
            _stop(replicas, sim)
    return out


# ---- 2. kill -9 a replica mid-storm ----


def drill_crash(size: Size) -> Outcome:
    replicas_n = max(2, size.replicas - 1)
    count = size.incidents // 2
    out = Outcome(f"crash: kill -9 one of {replicas_n} replicas in a storm of {count}")
    with fresh_schema() as url:
        inst = install(url, window=size.window)
        sim = Simulator()
        replicas = _start_replicas("crash", url, sim, replicas_n)
        victim = replicas[0]
        alive = {r.name: True for r in replicas}
        timing: dict[str, float] = {}

        def bases() -> list[str]:
            return [r.base for r in replicas if alive[r.name]]

        def crash_and_restart() -> None:
            log(f"crash: kill -9 {victim.name} (pid {victim.proc.pid if victim.proc else '?'})")
            victim.kill9()
            timing["killed"] = time.monotonic()
            time.sleep(0.5)
            alive[victim.name] = False  # the clients' failover noticed; they stop trying it until it is back
            time.sleep(1.5)
            victim.start()  # the same command, as an operator (or systemd) would restart it
            alive[victim.name] = True
            timing["restarted"] = time.monotonic()
            log(f"crash: {victim.name} is back after {timing['restarted'] - timing['killed']:.1f} s")

        def during(n: int) -> None:
            if n == count // 2:
                threading.Thread(target=crash_and_restart, daemon=True).start()

        try:
            with RssSampler(replicas) as rss:
                intake = storm(inst, bases, count=count, rate=size.rate, tag="crash", during=during)
                out.counts["intake statuses"] = dict(intake.statuses)
                out.counts["client failovers (connection errors)"] = intake.failovers
                waited = wait_settled(url, timeout=_settle_bound(size) + 30)
                log(f"settled {waited:.0f} s after the last incident")
            out.counts["memory per replica (peak RSS)"] = rss.report()
            out.counts["restart took (s)"] = round(timing.get("restarted", 0) - timing.get("killed", 0), 1)
            lease = float(victim.env["DUTYLINE_DISPATCH_LEASE_SECONDS"])
            out.counts["at-least-once window (lease, s)"] = lease
            dups = verify_pages(url, sim, out, accepted=intake.accepted, window=inst.window)
            late_p99 = out.counts.pop("_lateness_p99")
            out.counts["lateness p99 (not enforced here)"] = round(late_p99, 3)
            _allowed_duplicates(url, dups, out, none_at_all=True)
            engine = engine_for(url)
            with engine.connect() as conn:
                retaken = conn.execute(
                    text("SELECT count(*) FROM outbox_message WHERE channel IN ('sms','voice') AND attempts > 1")
                ).scalar()
            engine.dispose()
            out.counts["pages taken again after a lease ran out"] = retaken
        finally:
            _stop(replicas, sim)
    return out


# ---- 3. the database unreachable ----


def _probe(http: httpx.Client, method: str, url: str, **kw: Any) -> tuple[str, float, str]:
    t0 = time.monotonic()
    try:
        r = http.request(method, url, timeout=CALL_BOUND + 5, **kw)
        status, body = str(r.status_code), r.text[:200]
    except httpx.TimeoutException:
        status, body = "hang", ""
    except httpx.TransportError as exc:
        status, body = "connection error", repr(exc)
    return status, time.monotonic() - t0, body


def drill_outage(size: Size) -> Outcome:
    out = Outcome(f"database outage: PostgreSQL unreachable for {size.outage:.0f} s under load")
    with fresh_schema() as url:
        inst = install(url, window=size.window)
        pg = make_url(url)
        proxy = TcpProxy(pg.host or "127.0.0.1", pg.port or 5432).start()
        proxied = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        sim = Simulator()
        replicas = _start_replicas("outage", proxied, sim, 2)
        bases = [r.base for r in replicas]
        probes: Counter[str] = Counter()
        examples: dict[str, str] = {}
        slowest = [0.0]
        recovered: dict[str, float] = {}
        # The load spans the outage: a quarter of it before, the rest during and after.
        rate = min(size.rate, 20)
        count = int(rate * (size.outage + 15))

        def outage() -> None:
            log(f"outage: cutting the database path for {size.outage:.0f} s")
            proxy.cut()
            cut_at = time.monotonic()
            headers = {"X-API-Key": inst.api_key}
            body = {
                "external_id": "outage-probe",
                "category": "fire",
                "title": "演练",
                "unit_code": inst.streets[0],
                "casualties": {"deaths": 0, "injuries": 0, "trapped": 0, "missing": 0},
            }
            with httpx.Client(headers=headers) as http:
                n = 0
                while time.monotonic() - cut_at < size.outage - 1:
                    base = bases[n % len(bases)]
                    n += 1
                    for what, method, path, kw in (
                        ("readyz", "GET", "/readyz", {}),
                        ("POST incidents", "POST", "/api/v1/incidents", {"json": body | {"external_id": f"o-{n}"}}),
                        ("GET incidents", "GET", "/api/v1/incidents", {}),
                    ):
                        status, spent, text_ = _probe(http, method, base + path, **kw)
                        probes[f"{what} {status}"] += 1
                        examples.setdefault(f"{what} {status}", text_)
                        slowest[0] = max(slowest[0], spent)
                    time.sleep(0.5)
            proxy.restore()
            back = time.monotonic()
            log("outage: the database path is back")
            with httpx.Client() as http:
                for r in replicas:
                    while time.monotonic() - back < 60:
                        if _probe(http, "GET", r.base + "/readyz")[0] == "200":
                            recovered[r.name] = time.monotonic() - back
                            break
                        time.sleep(0.2)

        def during(n: int) -> None:
            if n == count // 4:
                threading.Thread(target=outage, daemon=True, name="outage").start()

        try:
            with RssSampler(replicas) as rss:
                intake = storm(inst, lambda: bases, count=count, rate=rate, tag="outage", during=during)
                # The outage may outlast the intake; wait for the recovery before counting.
                deadline = time.monotonic() + size.outage + 70
                while len(recovered) < len(replicas) and time.monotonic() < deadline:
                    time.sleep(0.5)
                after = storm(inst, lambda: bases, count=20, rate=10, tag="after")
                waited = wait_settled(url, timeout=_settle_bound(size))
                log(f"settled {waited:.0f} s after the last incident")
            out.counts["memory per replica (peak RSS)"] = rss.report()
            out.counts["intake statuses (load)"] = dict(intake.statuses)
            out.counts["probes during the outage"] = dict(probes)
            out.counts["slowest answer in the outage (s)"] = round(slowest[0], 2)
            out.counts["/readyz green again after (s)"] = {k: round(v, 1) for k, v in recovered.items()}
            out.counts["intake after recovery"] = dict(after.statuses)
            for key, example in examples.items():
                if " 503" in key and "readyz" not in key:
                    ok = '"code":"database_unavailable"' in example.replace(" ", "")
                    out.check(ok, f"{key} body is not the JSON error: {example[:120]}")
            bad = {k: n for k, n in probes.items() if not (k.endswith(" 503"))}
            out.check(not bad, f"answers during the outage other than 503: {bad}")
            out.check(slowest[0] <= CALL_BOUND, f"an answer took {slowest[0]:.1f} s during the outage")
            out.check(len(recovered) == len(replicas), f"readyz recovered only on {sorted(recovered)}")
            out.check(after.statuses.get("201", 0) == 20, f"intake after the outage: {dict(after.statuses)}")
            non_503 = {k: n for k, n in intake.statuses.items() if k not in ("201", "503")}
            out.check(not non_503, f"load answers other than 201/503: {non_503}")
            accepted = intake.accepted | after.accepted
            dups = verify_pages(url, sim, out, accepted=accepted, window=inst.window)
            out.counts["lateness p99 (not enforced here)"] = round(out.counts.pop("_lateness_p99"), 3)
            _allowed_duplicates(url, dups, out)
        finally:
            _stop(replicas, sim)
            proxy.stop()
    return out


# ---- 4. provider faults, then the provider down; webhooks that fail ----


class Receiver:
    """A webhook endpoint: one event in five always answers 400 (dead-letter), two in five answer 500 to the
    first two attempts and then 200, the rest 200 at once. Which is which follows the event id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.attempts: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event = self.headers.get("X-Webhook-Id", "")
                outer.attempts[event] += 1
                kind = outer.kind(event)
                code = 400 if kind == "reject" else 500 if kind == "flaky" and outer.attempts[event] <= 2 else 200
                if code == 200:
                    outer.accepted[event] += 1
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def kind(event: str) -> str:
        n = int(hashlib.sha256(event.encode()).hexdigest(), 16) % 5
        return "reject" if n == 0 else "flaky" if n in (1, 2) else "ok"

    def stop(self) -> None:
        self.server.shutdown()


def _drain_time(url: str, up: float, *, bound: float) -> float:
    """Seconds from the provider's return until every page queued before it has gone out."""
    engine = engine_for(url)
    cutoff = time.time() - (time.monotonic() - up)
    try:
        while time.monotonic() - up < bound:
            with engine.connect() as conn:
                left = conn.execute(
                    text(
                        "SELECT count(*) FROM outbox_message WHERE channel IN ('sms','voice') "
                        "AND status IN ('queued','sending') AND created_at <= to_timestamp(:t)"
                    ),
                    {"t": cutoff},
                ).scalar()
            if not left:
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
    return time.monotonic() - up


def drill_provider(size: Size) -> Outcome:
    count = max(150, size.incidents // 8)
    out = Outcome(f"provider faults: 30 % failures + 5 % timeouts, then down {size.provider_down:.0f} s")
    with fresh_schema() as url:
        inst = install(url, window=max(size.window, 8))
        sim = Simulator()
        receiver = Receiver()
        replicas = _start_replicas("provider", url, sim, 2)
        bases = [r.base for r in replicas]
        try:
            r = httpx.post(
                f"{bases[0]}/api/v1/webhook-subscriptions",
                headers={"X-API-Key": inst.api_key},
                json={"url": f"http://127.0.0.1:{receiver.port}/hook", "event_types": ["incident.created"]},
                timeout=10,
            )
            out.check(r.status_code == 201, f"subscription: {r.status_code} {r.text[:200]}")
            sim.configure(failure_rate=0.3, timeout_rate=0.05)
            log("provider: 30 % failures, 5 % timeouts")
            timing: dict[str, float] = {}

            def down_then_up() -> None:
                sim.configure(failure_rate=0.0, timeout_rate=0.0)
                log(f"provider: down for {size.provider_down:.0f} s")
                sim.proxy.cut()
                timing["down"] = time.monotonic()
                time.sleep(size.provider_down)
                sim.proxy.restore()
                timing["up"] = time.monotonic()
                log("provider: back")

            def during(n: int) -> None:
                if n == count // 2:
                    threading.Thread(target=down_then_up, daemon=True).start()

            with RssSampler(replicas) as rss:
                intake = storm(inst, lambda: bases, count=count, rate=min(size.rate, 10), tag="provider", during=during)
                while "up" not in timing:
                    time.sleep(0.5)
                drained = _drain_time(url, timing["up"], bound=_settle_bound(size) + 60)
                waited = wait_settled(url, timeout=_settle_bound(size) + 60, channels=("sms", "voice", "webhook"))
                log(f"pages queued before the recovery all out {drained:.1f} s after it; settled {waited:.0f} s later")
            out.counts["memory per replica (peak RSS)"] = rss.report()
            out.counts["intake statuses"] = dict(intake.statuses)
            out.counts["queued pages all out after recovery (s)"] = round(drained, 1)
            out.check(drained < _settle_bound(size), "the pages queued in the outage did not all go out")
            stats = sim.stats()
            out.counts["simulator injected faults"] = stats["injected"]
            dups = verify_pages(url, sim, out, accepted=intake.accepted, window=inst.window)
            out.counts["lateness p99 (not enforced here)"] = round(out.counts.pop("_lateness_p99"), 3)
            _allowed_duplicates(url, dups, out)
            engine = engine_for(url)
            with engine.connect() as conn:
                hooks = conn.execute(
                    text("SELECT event_id, status, attempts FROM outbox_message WHERE channel = 'webhook'")
                ).all()
                retried = conn.execute(
                    text("SELECT count(*) FROM outbox_message WHERE channel IN ('sms','voice') AND attempts > 1")
                ).scalar()
            engine.dispose()
            out.counts["pages that needed a retry"] = retried
            expect = {"reject": "failed", "flaky": "delivered", "ok": "delivered"}
            kinds: Counter[str] = Counter()
            wrong = []
            for event, status, attempts in hooks:
                kind = Receiver.kind(event)
                kinds[f"{kind} -> {status}"] += 1
                if status != expect[kind] or (kind == "reject" and attempts != 1) or (kind == "flaky" and attempts < 3):
                    wrong.append(f"{event} {kind}: {status} after {attempts} attempts")
            missing = [e for e, s, _ in hooks if s == "delivered" and receiver.accepted[e] < 1]
            out.counts["webhook deliveries"] = len(hooks)
            out.counts["webhooks (receiver kind -> status)"] = dict(kinds)
            out.counts["webhook duplicates at the receiver"] = sum(n - 1 for n in receiver.accepted.values() if n > 1)
            out.check(len(hooks) == len(intake.accepted), f"{len(hooks)} webhook rows for {len(intake.accepted)} 201s")
            out.check(not wrong, f"{len(wrong)} webhook deliveries ended wrongly, e.g. {wrong[:3]}")
            out.check(not missing, f"{len(missing)} webhooks marked delivered never reached the receiver")
        finally:
            _stop(replicas, sim)
            receiver.stop()
    return out


# ---- 4b. the mainland route: Alibaba Cloud rate-limited, then down; Tencent Cloud carries the pages ----

CALLBACK_TOKEN = "drill-callback-token-0123456789"


def mainland_env(sim: Simulator) -> dict[str, str]:
    return {
        "DUTYLINE_SMS_ROUTES": "+86=aliyun,tencent;*=twilio",
        "DUTYLINE_VOICE_ROUTES": "+86=aliyun;*=twilio",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": SIM.aliyun_access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SIM.aliyun_access_key_secret,
        "ALIYUN_SMS_SIGN_NAME": "应急值守",
        "ALIYUN_VOICE_SHOW_NUMBER": "01066666110",
        "ALIYUN_SMS_ENDPOINT": sim.root,
        "ALIYUN_VOICE_ENDPOINT": sim.root,
        "TENCENTCLOUD_SECRET_ID": SIM.tencent_secret_id,
        "TENCENTCLOUD_SECRET_KEY": SIM.tencent_secret_key,
        "TENCENT_SMS_SDK_APP_ID": SIM.tencent_sdk_app_id,
        "TENCENT_SMS_SIGN_NAME": "应急值守",
        "TENCENT_SMS_ENDPOINT": sim.root,
        "TENCENT_SMS_PULL_STATUS": "true",
        "DUTYLINE_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "DUTYLINE_PROVIDER_TIMEOUT_SECONDS": "2",
    }


def drill_mainland(size: Size) -> Outcome:
    count = max(120, size.incidents // 10)
    phase = size.provider_down
    out = Outcome(f"mainland route: Alibaba Cloud rate-limited {phase:.0f} s, then down {phase:.0f} s; Tencent carries")
    with fresh_schema() as url:
        inst = install(url, window=max(size.window, 8))
        sim = Simulator()
        replicas = _start_replicas("mainland", url, sim, 2, **mainland_env(sim))
        bases = [r.base for r in replicas]
        base = bases[0]
        # Receipts on (the other drills keep them off), a tenth of the pushes repeated.
        sim.configure(
            send_callbacks=True,
            repeat_rate=0.1,
            callbacks={
                "aliyun_sms_report_url": f"{base}/callbacks/aliyun/{CALLBACK_TOKEN}/sms-report",
                "aliyun_sms_up_url": f"{base}/callbacks/aliyun/{CALLBACK_TOKEN}/sms-up",
                "aliyun_voice_report_url": f"{base}/callbacks/aliyun/{CALLBACK_TOKEN}/voice-report",
                "tencent_sms_status_url": f"{base}/callbacks/tencent/{CALLBACK_TOKEN}/sms-status",
                "tencent_sms_reply_url": f"{base}/callbacks/tencent/{CALLBACK_TOKEN}/sms-reply",
            },
        )
        timing: dict[str, float] = {}
        try:

            def faults() -> None:
                sim.configure(faults={"aliyun": "rate_limited"})
                log(f"aliyun: rate-limited on every send for {phase:.0f} s")
                timing["limited"] = time.monotonic()
                time.sleep(phase)
                sim.configure(faults={"aliyun": "down"})
                log(f"aliyun: down for {phase:.0f} s")
                time.sleep(phase)
                sim.configure(faults={"aliyun": None})
                timing["up"] = time.monotonic()
                log("aliyun: back")

            def during(n: int) -> None:
                if n == count // 4:
                    threading.Thread(target=faults, daemon=True).start()

            with RssSampler(replicas) as rss:
                intake = storm(inst, lambda: bases, count=count, rate=min(size.rate, 4), tag="mainland", during=during)
                while "up" not in timing:
                    time.sleep(0.5)
                waited = wait_settled(url, timeout=_settle_bound(size) + 60, channels=("sms", "voice"))
                log(f"settled {waited:.0f} s after Alibaba Cloud came back")
            out.counts["memory per replica (peak RSS)"] = rss.report()
            out.counts["intake statuses"] = dict(intake.statuses)
            stats = sim.stats()
            out.counts["simulator injected faults"] = stats["injected"]
            out.counts["messages by provider (simulator)"] = stats["by_provider"]
            dups = verify_pages(url, sim, out, accepted=intake.accepted, window=inst.window)
            out.counts["lateness p99 (not enforced here)"] = round(out.counts.pop("_lateness_p99"), 3)
            _allowed_duplicates(url, dups, out)
            engine = engine_for(url)
            with engine.connect() as conn:
                providers: dict[str, int] = dict(
                    conn.execute(
                        text(
                            "SELECT coalesce(provider, '-') || ' ' || status, count(*) FROM outbox_message "
                            "WHERE channel IN ('sms','voice') GROUP BY 1"
                        )
                    ).all()
                )
                failovers = conn.execute(text("SELECT count(*) FROM timeline_entry WHERE kind = 'failover'")).scalar()
                sms: dict[str, int] = dict(
                    conn.execute(
                        text("SELECT status, count(*) FROM outbox_message WHERE channel = 'sms' GROUP BY status")
                    ).all()
                )
            engine.dispose()
            out.counts["pages by provider and status"] = providers
            out.counts["failover entries on timelines"] = failovers
            metrics = httpx.get(f"{base}/metrics", timeout=30).text
            ignored = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("dutyline_provider_push_items_ignored_total{")
            )
            out.counts["pushed items for no known message (metric)"] = ignored
            # SMS only: a call's receipt comes when the callee presses a key or hangs up, which nobody does here.
            out.counts["SMS rows by status (receipts pushed)"] = sms
            delivered = sms.get("delivered", 0)
            out.check(delivered >= 0.95 * sum(sms.values()), f"only {delivered} SMS have a delivery receipt")
            out.check(stats["by_provider"].get("tencent", 0) > 0, "Tencent carried no page during the faults")
            out.check(stats["by_provider"].get("aliyun", 0) > 0, "Alibaba Cloud carried no page outside the faults")
            out.check(bool(failovers), "no failover is on any timeline")
            out.check(
                stats["injected"].get("aliyun_rate_limited", 0) > 0 and stats["injected"].get("aliyun_down", 0) > 0,
                "the faults were not hit",
            )
            out.check(
                not stats["injected"].get("aliyun_rejected_signature")
                and not stats["injected"].get("tencent_rejected_signature"),
                "the simulator rejected SDK signatures",
            )
        finally:
            _stop(replicas, sim)
    return out


# ---- 5. bad input: every operation fuzzed from the OpenAPI document ----

FUZZ_CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def drill_fuzz(size: Size) -> Outcome:
    out = Outcome("bad input: schemathesis on every operation of /openapi.json, signed in as the city admin")
    with fresh_schema() as url:
        inst = install(url, window=60)
        sim = Simulator()
        replicas = _start_replicas("fuzz", url, sim, 1)
        try:
            base = replicas[0].base
            answer = httpx.post(
                f"{base}/api/v1/auth/token", data={"username": "admin", "password": inst.admin_password}, timeout=10
            )
            token = answer.json()["access_token"]
            # FastAPI builds the OpenAPI document on first request; on a busy machine that alone can pass
            # schemathesis's 10 s schema-loading timeout, so build it once first.
            httpx.get(f"{base}/openapi.json", timeout=120).raise_for_status()
            command = [
                str(BIN / "schemathesis"), "run", f"{base}/openapi.json",
                "-H", f"Authorization: Bearer {token}",
                "-c", FUZZ_CHECKS, "-n", str(size.fuzz_examples), "--seed", "1",
                "--request-timeout", "10", "--phases", "examples,coverage,fuzzing",
            ]  # fmt: skip
            log(f"fuzz: schemathesis, {size.fuzz_examples} examples per operation")
            done = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
            report = LOGS / "fuzz-schemathesis.log"
            report.write_text(done.stdout + done.stderr)  # schemathesis prints the token as [Filtered]
            lines = [line.strip() for line in done.stdout.splitlines()]
            out.counts["operations tested"] = next(
                (x.split(":", 1)[1].strip() for x in lines if x.startswith("Tested:")), "?"
            )
            out.counts["test cases"] = next((x for x in lines if x[:1].isdigit() and " generated," in x), "?")
            out.counts["checks"] = FUZZ_CHECKS
            out.counts["server errors (5xx)"] = sum("Server error" in x for x in lines)
            out.check(done.returncode == 0, f"schemathesis found failures: see {report.relative_to(ROOT)}")
        finally:
            _stop(replicas, sim)
    return out


DRILLS = {
    "storm": drill_storm,
    "crash": drill_crash,
    "outage": drill_outage,
    "provider": drill_provider,
    "mainland": drill_mainland,
    "fuzz": drill_fuzz,
}


def main() -> None:
    parser = argparse.ArgumentParser(description="dutyline reliability drills (docs/reliability.md)")
    parser.add_argument("--short", action="store_true", help="the small versions (CI)")
    parser.add_argument("--json", help="also write the summaries to this file")
    parser.add_argument("drills", nargs="*", help=f"which drills: {', '.join(DRILLS)} (default: all)")
    args = parser.parse_args()
    unknown = [d for d in args.drills if d not in DRILLS]
    if unknown:
        parser.error(f"unknown drill(s) {unknown}; known: {', '.join(DRILLS)}")
    size = SHORT if args.short else FULL
    outcomes = []
    started = time.monotonic()
    for old in LOGS.glob("*.log"):
        old.unlink()
    for name in args.drills or list(DRILLS):
        t0 = time.monotonic()
        load = os.getloadavg()[0]
        outcome = DRILLS[name](size)
        outcome.counts["drill took (s)"] = round(time.monotonic() - t0, 1)
        # The machine may be shared: its load says how much else was running (2 cores: 2.0 is full).
        outcome.counts["load average before / after"] = f"{load:.1f} / {os.getloadavg()[0]:.1f}"
        print(outcome.summary(), flush=True)
        outcomes.append(outcome)
    failed = [o.name for o in outcomes if o.failures]
    print(f"== {len(outcomes)} drill(s) in {time.monotonic() - started:.0f} s; failed: {failed or 'none'}")
    if args.json:
        Path(args.json).write_text(
            json.dumps([{"name": o.name, "counts": o.counts, "failures": o.failures} for o in outcomes], indent=1)
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
