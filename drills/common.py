"""Shared parts of the reliability drills: a fresh PostgreSQL schema, the Twilio simulator and `dutyline serve`
replicas as real processes, a loopback TCP proxy that can cut a connection path, a round-robin intake client,
and the checks that compare the database with what the simulator received.

Every drill builds on these; none of them talks to anything but loopback.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import demo, migrate
from app.auth.principal import Principal
from app.clock import SystemClock
from app.db import make_engine, transaction
from app.escalation.rules import schemas as rules_schemas
from app.escalation.rules import service as rules_service
from app.notify.simulator import SimulatorConfig
from app.org import units as unit_service
from app.org.models import Tier, Unit

BASE_URL = os.environ.get("DRILLS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECRET = "drills-secret-key-0123456789-abcdefghijklmnop"
BIN = Path(sys.executable).parent  # the venv's bin: dutyline, schemathesis
SIM = SimulatorConfig()  # random credentials for this run; the simulator process gets them through its env
START = time.monotonic()
# Each replica's output goes to var/drills/<name>.log (appended across restarts).
LOGS = ROOT / "var" / "drills"


def log(message: str) -> None:
    print(f"[{time.monotonic() - START:7.1f}s] {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- results ----


@dataclass
class Outcome:
    """What a drill measured (printed as its summary) and the invariants it checked."""

    name: str
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.failures.append(message)
            log(f"INVARIANT FAILED: {message}")
        return ok

    def summary(self) -> str:
        lines = [f"== {self.name}: {'PASS' if not self.failures else 'FAIL'}"]
        for key, value in self.counts.items():
            lines.append(f"   {key:<34} {value}")
        lines.extend(f"   FAILED: {f}" for f in self.failures)
        return "\n".join(lines)


# ---- the database ----


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new schema in the test database for one drill, dropped afterwards; yields its URL."""
    schema = f"drill_{uuid.uuid4().hex[:10]}"
    admin = create_engine(BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(BASE_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Installation:
    url: str
    api_key: str  # the demo's 119 agency key (incidents:write, webhooks:write)
    admin_password: str  # the demo's password (user "admin" is the city admin)
    streets: list[str]
    window: int


def install(url: str, *, window: int, city_repeat_limit: int = 1) -> Installation:
    """Migrate, load the Beijing units and the demo roster, and set every level's ack window to `window` s.

    The city repeats once, then stops, so that a chain nobody answers ends: street 0, 1 and district 0, 1
    (both required at once by every level), then the city 0, 1, 2 (the repeat), then `escalation_stopped`:
    5 windows after the report.
    """
    migrate.upgrade(url)
    engine = make_engine(url)
    with transaction(engine) as s:
        unit_service.load_units(s, unit_service.read_units_file(unit_service.default_data_path()))
        report = demo.install(s, clock=SystemClock())
        document = rules_schemas.default_document().model_dump(mode="json")
        for level in document["levels"].values():
            level["ack_window_seconds"] = window
        document["city_repeat_limit"] = city_repeat_limit
        rules_service.replace(s, clock=SystemClock(), actor=Principal.system("drills"), document=document)
    key = next(line.split()[1] for line in report.splitlines() if line.strip().startswith("119 "))
    with engine.connect() as conn:
        streets = [r[0] for r in conn.execute(text("SELECT code FROM unit WHERE tier = :t"), {"t": Tier.street.value})]
    engine.dispose()
    assert streets and Unit is not None
    password = next(line.split()[1] for line in report.splitlines() if line.strip().startswith("password:"))
    return Installation(url=url, api_key=key, admin_password=password, streets=sorted(streets), window=window)


# ---- a loopback TCP proxy that can be cut ----


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target. `cut()` closes every proxied connection and the listening
    socket (new connections are refused), `restore()` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.accepted = 0
        self.refused_while_cut = 0

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with self._lock:
                    self._conns.discard(s)
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = list(self._conns), set()
        if listener is not None:
            listener.close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()


# ---- processes: the simulator and the replicas ----

SIM_SCRIPT = """
import sys, uvicorn
from app.notify.simulator import SimulatorConfig, standalone
config = SimulatorConfig.from_env(latency=float(sys.argv[2]), send_callbacks=False, timeout_hold=3.0, seed=7)
app, _ = standalone(config)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.2)


class Simulator:
    """The standalone Twilio simulator in its own process. The app reaches it through `proxy` (cuttable)."""

    def __init__(self, latency: float = 0.02) -> None:
        self.port = free_port()
        self.latency = latency
        self.proxy = TcpProxy("127.0.0.1", self.port).start()
        env = {**os.environ, **SIM.credentials_env()}
        args = [sys.executable, "-c", SIM_SCRIPT, str(self.port), str(latency)]
        self.proc = subprocess.Popen(args, cwd=str(ROOT), env=env)
        _wait_http(f"http://127.0.0.1:{self.port}/sim/stats", self.proc, "the simulator")
        self.control = {"Authorization": f"Bearer {SIM.control_token}"}

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}/sim"

    @property
    def root(self) -> str:
        """Where the Alibaba Cloud and Tencent Cloud SDKs post (the simulator's root path, through the proxy)."""
        return f"http://127.0.0.1:{self.proxy.port}"

    def stats(self) -> dict[str, Any]:
        r = httpx.get(f"http://127.0.0.1:{self.port}/sim/stats", headers=self.control, timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def configure(self, **patch: Any) -> None:
        url = f"http://127.0.0.1:{self.port}/sim/config"
        httpx.patch(url, json=patch, headers=self.control, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proxy.stop()
        self.proc.terminate()
        self.proc.wait(10)


def replica_env(url: str, sim: Simulator, port: int, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DUTYLINE_SECRET_KEY": SECRET,
        "DUTYLINE_LOG_LEVEL": "WARNING",
        "DUTYLINE_SIMULATOR": "off",
        "DUTYLINE_WEBHOOK_ALLOW_PRIVATE": "true",  # the drills' receivers listen on loopback
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_ACCOUNT_SID": SIM.account_sid,
        "TWILIO_AUTH_TOKEN": SIM.auth_token,
        "TWILIO_FROM_NUMBER": SIM.service_number,
        "TWILIO_API_BASE_URL": sim.api_base,
        "TWILIO_TIMEOUT_SECONDS": "2",
        "DUTYLINE_DISPATCH_POLL_SECONDS": "0.5",
        "DUTYLINE_DISPATCH_CONCURRENCY": "8",
        "DUTYLINE_DISPATCH_LEASE_SECONDS": "10",
        "DUTYLINE_DISPATCH_BACKOFF_SECONDS": "1",
        "DUTYLINE_DISPATCH_BACKOFF_MAX_SECONDS": "8",
        "DUTYLINE_DISPATCH_MAX_ATTEMPTS": "30",
        "DUTYLINE_DB_POOL_SIZE": "5",
        # Every number by the Twilio simulator; the mainland drill routes +86 through Alibaba Cloud and Tencent.
        "DUTYLINE_SMS_ROUTES": "*=twilio",
        "DUTYLINE_VOICE_ROUTES": "*=twilio",
    }
    env.update(extra)
    return env


class Replica:
    """One `dutyline serve` process (API, scheduler tick and dispatcher), started as an operator would."""

    def __init__(self, name: str, env: dict[str, str], port: int) -> None:
        self.name = name
        self.env = env
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss_kb = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(BIN / "dutyline"), "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def start(self) -> Replica:
        LOGS.mkdir(parents=True, exist_ok=True)
        with (LOGS / f"{self.name}.log").open("ab") as logfile:
            self.proc = subprocess.Popen(self.command(), env=self.env, cwd=str(ROOT), stdout=logfile, stderr=logfile)
        _wait_http(f"{self.base}/healthz", self.proc, f"replica {self.name}")
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.sample_rss()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def rss_kb(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return 0
        return 0

    def sample_rss(self) -> int:
        rss = self.rss_kb()
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        return rss

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class RssSampler:
    """Samples every replica's VmRSS once a second (peak per replica)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for r in self.replicas:
            r.sample_rss()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for r in self.replicas:
                r.sample_rss()

    def report(self) -> str:
        return ", ".join(f"{r.name} {r.peak_rss_kb / 1024:.0f} MiB" for r in self.replicas)


# ---- intake ----


def incident_body(rng: random.Random, streets: list[str], n: int, tag: str) -> dict[str, Any]:
    return {
        "external_id": f"drill-{tag}-{n}",
        "category": rng.choice(["fire", "gas", "traffic", "hospital"]),
        "title": "演练事件",
        "unit_code": rng.choice(streets),
        "occurred_at": datetime.now(UTC).isoformat(),
        "casualties": {"deaths": rng.choice([0, 0, 0, 1, 3, 10]), "injuries": 0, "trapped": 0, "missing": 0},
    }


@dataclass
class IntakeResult:
    accepted: dict[str, int] = field(default_factory=dict)  # external_id -> incident id, for every 201
    statuses: Counter[str] = field(default_factory=Counter)
    bodies_503: list[str] = field(default_factory=list)
    failovers: int = 0  # connection errors retried on the next replica
    slowest: float = 0.0
    elapsed: float = 0.0


def storm(
    inst: Installation,
    bases: Callable[[], list[str]],
    *,
    count: int,
    rate: float,
    tag: str,
    threads: int = 8,
    timeout: float = 10.0,
    during: Callable[[int], None] | None = None,
) -> IntakeResult:
    """POST `count` incidents at about `rate` per second, round-robin over the replicas `bases()` names.

    A connection error (a killed replica) is retried on the next replica; a 503 is recorded and the client
    moves on. Accepted means a 201 (or a 200 for a repeat that found the incident already created).
    `during(n)` is called by the pacing thread before incident n.
    """
    rng = random.Random(hash(tag) & 0xFFFF)
    bodies = [incident_body(rng, inst.streets, n, tag) for n in range(count)]
    result = IntakeResult()
    lock = threading.Lock()
    todo: list[tuple[int, dict[str, Any]]] = []
    ready = threading.Condition()
    done = threading.Event()

    def worker() -> None:
        with httpx.Client(headers={"X-API-Key": inst.api_key}, timeout=timeout) as http:
            while True:
                with ready:
                    while not todo and not done.is_set():
                        ready.wait(0.5)
                    if not todo:
                        return
                    n, body = todo.pop(0)
                targets = bases()
                t0 = time.monotonic()
                # A connection error moves on to the next replica with the same body; the external id makes
                # that safe (a repeat answers 200 with the same incident if the first attempt got through).
                for attempt in range(len(targets)):
                    base = targets[(n + attempt) % len(targets)]
                    try:
                        r = http.post(f"{base}/api/v1/incidents", json=body)
                        status = str(r.status_code)
                        break
                    except httpx.TimeoutException:
                        status = "timeout"
                        break
                    except httpx.TransportError:
                        status = "connection error"
                        with lock:
                            result.failovers += 1
                spent = time.monotonic() - t0
                with lock:
                    result.statuses[status] += 1
                    result.slowest = max(result.slowest, spent)
                    if status in ("201", "200"):
                        result.accepted[str(body["external_id"])] = int(r.json()["id"])
                    elif status == "503" and len(result.bodies_503) < 3:
                        result.bodies_503.append(r.text[:200])

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    started = time.monotonic()
    for n, body in enumerate(bodies):
        if during is not None:
            during(n)
        wait = started + n / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with ready:
            todo.append((n, body))
            ready.notify()
    done.set()
    for t in pool:
        t.join()
    result.elapsed = time.monotonic() - started
    return result


# ---- checks against the database and the simulator ----


def engine_for(url: str) -> Engine:
    return make_engine(url, pool_size=2)


def wait_settled(url: str, *, timeout: float, channels: tuple[str, ...] = ("sms", "voice")) -> float:
    """Wait until no escalation timer is pending and no message of `channels` is queued or being sent;
    returns the seconds waited (the drill fails later if it never settled)."""
    engine = engine_for(url)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            with engine.connect() as conn:
                timers = conn.execute(
                    text("SELECT count(*) FROM incident_tier WHERE next_step_at IS NOT NULL")
                ).scalar()
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM outbox_message WHERE status IN ('queued','sending') AND channel = ANY(:c)"
                    ),
                    {"c": list(channels)},
                ).scalar()
            if not timers and not waiting:
                break
            time.sleep(1.0)
    finally:
        engine.dispose()
    return time.monotonic() - t0


# The outbox rows a chain nobody answers must have produced, per tier: every step's pages (see install()).
EXPECTED_STEPS = {"street": {0, 1}, "district": {0, 1}, "city": {0, 1, 2}}


def verify_pages(url: str, sim: Simulator, out: Outcome, *, accepted: dict[str, int], window: int) -> dict[str, int]:
    """Every accepted incident exists and ran its whole chain; every page went out once; lateness.

    Returns the simulator's duplicate counts per outbox id (the caller decides what is allowed).
    """
    engine = engine_for(url)
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(text("SELECT id FROM incident"))}
        rows = conn.execute(
            text(
                "SELECT id, incident_id, tier, step, channel, status, created_at FROM outbox_message "
                "WHERE channel IN ('sms','voice')"
            )
        ).all()
        tiers = conn.execute(text("SELECT incident_id, tier, step, next_step_at, required FROM incident_tier")).all()
        stopped = {
            r[0]
            for r in conn.execute(
                text("SELECT DISTINCT incident_id FROM timeline_entry WHERE kind = 'escalation_stopped'")
            )
        }
        steps_at = conn.execute(
            text("SELECT incident_id, tier, at, data FROM timeline_entry WHERE kind IN ('page', 'escalated')")
        ).all()
    engine.dispose()
    # The simulator is asked after the database: a row recorded as sent is then always among its sends, even when
    # the drill ends with dispatchers still at work (a send recorded between the two reads was once reported as
    # "marked sent but the simulator never got it").
    stats = sim.stats()
    sends: dict[str, int] = stats["sends_by_key"]

    lost = [x for x, i in accepted.items() if i not in ids]
    out.counts["accepted (201)"] = len(accepted)
    out.counts["lost (201 but not in the DB)"] = len(lost)
    out.check(not lost, f"{len(lost)} accepted incidents are missing, e.g. {lost[:3]}")

    mine = set(accepted.values())
    by_step: dict[tuple[int, str], set[int]] = {}
    first_created: dict[tuple[int, str, int], datetime] = {}
    status_count: Counter[str] = Counter()
    for _oid, inc, tier, step, _channel, status, created in rows:
        status_count[status] += 1
        if inc in mine and tier is not None and step is not None:
            by_step.setdefault((inc, tier), set()).add(step)
            k = (inc, tier, step)
            first_created[k] = min(first_created.get(k, created), created)
    skipped = []
    for inc in mine:
        for tier, want in EXPECTED_STEPS.items():
            missing = want - by_step.get((inc, tier), set())
            if missing:
                skipped.append(f"incident {inc} {tier} step(s) {sorted(missing)}")
    pending = [t for t in tiers if t[3] is not None and t[0] in mine]
    unfinished = [i for i in mine if i not in stopped]
    out.counts["pages (sms+voice rows)"] = len(rows)
    out.counts["rows by status"] = dict(status_count)
    out.counts["skipped steps"] = len(skipped)
    out.check(not skipped, f"{len(skipped)} required steps have no page, e.g. {skipped[:3]}")
    out.check(not pending, f"{len(pending)} tiers still have a pending timer after the drill")
    out.check(not unfinished, f"{len(unfinished)} incidents never reached the end of their chain")
    bad_status = {s: n for s, n in status_count.items() if s not in ("sent", "delivered")}
    out.check(not bad_status, f"pages not sent: {bad_status}")

    sent_ids = {str(r[0]) for r in rows if r[5] in ("sent", "delivered")}
    never = sorted(sent_ids - set(sends), key=int)
    unknown = sorted(set(sends) - {str(r[0]) for r in rows})
    dups = {k: n for k, n in sends.items() if n > 1}
    out.counts["paged at the simulator (keys)"] = len(sends)
    out.counts["duplicate pages at the simulator"] = sum(n - 1 for n in dups.values())
    out.check(not never, f"{len(never)} rows are marked sent but the simulator never got them, e.g. {never[:3]}")
    out.check(not unknown, f"the simulator got {len(unknown)} sends that match no outbox row, e.g. {unknown[:3]}")

    # Lateness: when each step's page was written (outbox created_at) minus when the step was due (the
    # previous step's time, as the engine recorded it on the timeline, plus the window).
    step_time: dict[tuple[int, str, int], datetime] = {}
    for inc, tier, at, data in steps_at:
        d = data if isinstance(data, dict) else json.loads(data or "{}")
        if d.get("step") is None or inc not in mine:
            continue
        k = (inc, tier, int(d["step"]))
        step_time[k] = min(step_time.get(k, at), at)
    late: list[float] = []
    over: Counter[str] = Counter()  # steps later than a second, by tier and step
    for (inc, tier, step), created in first_created.items():
        if step >= 1 and (inc, tier, step - 1) in step_time:
            due = step_time[(inc, tier, step - 1)].timestamp() + window
            late.append(created.timestamp() - due)
            if late[-1] > 1.0:
                over[f"{tier} {step}"] += 1
    # A tier started by escalation: due one window after the lower tier's step 1.
    below = {"district": "street", "city": "district"}
    for (inc, tier, step), created in first_created.items():
        lower = below.get(tier)
        if step == 0 and lower and (inc, lower, 1) in step_time:
            due = step_time[(inc, lower, 1)].timestamp() + window
            if created.timestamp() >= due - 0.5:  # started by this escalation, not at once by the level's plan
                late.append(created.timestamp() - due)
                if late[-1] > 1.0:
                    over[f"{tier} 0 (escalated)"] += 1
    out.counts["steps timed"] = len(late)
    out.counts["lateness p50 / p99 / max (s)"] = (
        f"{pct(late, 0.5):.3f} / {pct(late, 0.99):.3f} / {max(late, default=0.0):.3f}"
    )
    out.counts["steps later than 1 s"] = dict(over) or 0
    out.counts["_lateness_p99"] = pct(late, 0.99)
    return dups
