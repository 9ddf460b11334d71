"""SMS throughput through the whole pipeline: outbox rows → dispatcher → twilio library → httpx → simulator,
and for +86 numbers: outbox rows → dispatcher → routing → Alibaba Cloud's SDK (requests) → its simulator.

    python bench/bench_sms.py            # 10,000 SMS, 50 ms simulated latency, concurrency 64
    BENCH_N=2000 BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/bench_sms.py

Prints the dispatcher's rate with the rate limit off, next to raw httpx POSTs to the same simulator at the
same concurrency (threads, and asyncio for comparison), and the ratio; then a run with a rate limit set and
how close it came; RSS before and after. Then the mainland route: the dispatcher through the Alibaba Cloud
SMS SDK against raw httpx POSTs to the same endpoint (each signed with the SDK's own ACS3 signer, since the
simulator checks every signature), with the duplicates the simulator counted by outbox id.
The simulator runs in its own process (as Twilio would).
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, col, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import migrate
from app.clock import SystemClock
from app.db import make_engine, transaction
from app.notify import outbox
from app.notify.channels.sms import SmsChannel
from app.notify.channels.twilio_client import make_client
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.message_templates import TemplateBook, demo_document
from app.notify.models import OutboxMessage
from app.notify.providers.aliyun_sms import AliyunSms
from app.notify.providers.routing import RoutedChannel, parse_routes
from app.notify.simulator import SimulatorConfig
from bench.benchlib import database, free_port

N = int(os.environ.get("BENCH_N", "10000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "64"))
LATENCY = float(os.environ.get("BENCH_LATENCY", "0.05"))
LIMITED_N = int(os.environ.get("BENCH_LIMITED_N", "1500"))
LIMIT = float(os.environ.get("BENCH_RATE", "250"))
ALIYUN_N = int(os.environ.get("BENCH_ALIYUN_N", "5000"))
TIME_BUDGET = float(os.environ.get("BENCH_TIME_BUDGET", "240"))
SIM = SimulatorConfig()
CONTROL = {"Authorization": f"Bearer {SIM.control_token}"}  # the simulator's phone side needs its control token

SIM_SCRIPT = """
import sys, uvicorn
from app.notify.simulator import SimulatorConfig, standalone
app, _ = standalone(SimulatorConfig.from_env(latency=float(sys.argv[2]), send_callbacks=False))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, **SIM.credentials_env()}  # SIM's random credentials
    proc = subprocess.Popen([sys.executable, "-c", SIM_SCRIPT, str(port), str(LATENCY)], cwd=root, env=env)
    url = f"http://127.0.0.1:{port}/sim"
    for _ in range(200):
        try:
            httpx.get(f"{url}/stats", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the simulator did not start")


def enqueue(engine: Engine, n: int, tag: str, unit: str, prefix: str = "+86137") -> None:
    clock = SystemClock()
    for start in range(0, n, 2000):
        with transaction(engine) as session:
            for i in range(start, min(n, start + 2000)):
                outbox.enqueue(
                    session,
                    outbox.message(
                        clock=clock,
                        channel="sms",
                        to=f"{prefix}{i:08d}",
                        template="incident_page",
                        params={
                            "level": "IV",
                            "category": "fire",
                            "unit": unit,
                            "title": "压测",
                            "code": f"B{i}",
                            "window_seconds": 300,
                        },
                        dedup_key=f"{tag}:{i}",
                    ),
                )


def count_done(engine: Engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.status) != "queued")
        query = query.where(col(OutboxMessage.status) != "sending")
        return int(session.exec(query).one())


def run_dispatcher(engine: Engine, sim_url: str, n: int, rate: float, already: int) -> tuple[float, list[float]]:
    """Send n queued SMS with the dispatcher's background loop; the seconds it took and RSS samples."""
    client = make_client(SIM.account_sid, SIM.auth_token, base_url=sim_url, timeout=10)
    # A callback URL only so the simulator can count sends by our outbox id; it sends no callbacks here.
    sms = SmsChannel(client, from_number=SIM.service_number, status_callback_url="http://127.0.0.1:9/status")
    config = DispatchConfig(concurrency=CONCURRENCY, poll_seconds=0.05, rates={"sms": rate} if rate else {})
    dispatcher = Dispatcher(engine, clock=SystemClock(), channels={"sms": sms}, config=config)
    samples: list[float] = []
    started = time.perf_counter()
    dispatcher.start()
    deadline = started + TIME_BUDGET
    while (done := count_done(engine) - already) < n:
        if time.perf_counter() > deadline:
            dispatcher.stop()
            raise SystemExit(f"over the time budget: {done} of {n} sent")
        if len(samples) < int(10 * done / n):  # RSS at every tenth of the run
            samples.append(rss_mb())
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    dispatcher.stop()
    client.http_client.close()
    samples.append(rss_mb())
    return elapsed, samples


def run_aliyun(engine: Engine, root_url: str, n: int, already: int) -> float:
    """Send n queued +86 SMS through the route to Alibaba Cloud's SDK; the seconds it took."""
    provider = AliyunSms(
        access_key_id=SIM.aliyun_access_key_id,
        access_key_secret=SIM.aliyun_access_key_secret,
        sign_name="应急值守",
        book=TemplateBook.fixed(demo_document()),
        endpoint=root_url,
        timeout=10,
        pool_size=CONCURRENCY,
    )
    sms = RoutedChannel("sms", parse_routes("+86=aliyun"), {"aliyun": provider})
    config = DispatchConfig(concurrency=CONCURRENCY, poll_seconds=0.05)
    dispatcher = Dispatcher(engine, clock=SystemClock(), channels={"sms": sms}, config=config)
    started = time.perf_counter()
    dispatcher.start()
    deadline = started + TIME_BUDGET
    while (done := count_done(engine) - already) < n:
        if time.perf_counter() > deadline:
            dispatcher.stop()
            raise SystemExit(f"over the time budget: {done} of {n} sent")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    dispatcher.stop()
    return elapsed


def baseline_aliyun(root_url: str, n: int) -> float:
    """The same SendSms calls without the SDK: httpx POSTs from as many threads, each signed with the SDK's
    signer (the simulator verifies every one), one httpx.Client per thread."""
    import hashlib
    import json
    from types import SimpleNamespace
    from urllib.parse import urlencode

    from alibabacloud_tea_openapi.utils import Utils

    host = root_url.removeprefix("http://")
    empty = hashlib.sha256(b"").hexdigest()
    template = demo_document().providers["aliyun"].templates["incident_page"]
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(i: int) -> int:
        values = {"level": "IV", "category": "火灾", "unit": "基线街道", "title": "压测", "code": f"B{i}"}
        query = {
            "PhoneNumbers": f"138{i:08d}",
            "SignName": "应急值守",
            "TemplateCode": template.template_id,
            "TemplateParam": json.dumps(values),
            "OutId": f"base{i}",
        }
        headers = {
            "host": host,
            "x-acs-action": "SendSms",
            "x-acs-version": "2017-05-25",
            "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "x-acs-signature-nonce": f"{i}-{time.time_ns()}",
            "x-acs-content-sha256": empty,
            "accept": "application/json",
        }
        request = SimpleNamespace(pathname="/", method="POST", query=query, headers=headers)
        headers["Authorization"] = Utils.get_authorization(
            request, "ACS3-HMAC-SHA256", empty, SIM.aliyun_access_key_id, SIM.aliyun_access_key_secret
        )
        response = _thread_client(local, clients).post(f"{root_url}/?{urlencode(query)}", headers=headers)
        return response.status_code if response.json().get("Code") == "OK" else 0

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        codes = list(pool.map(post, range(n)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    assert set(codes) == {200}, set(codes)
    return n / elapsed


def _thread_client(local: threading.local, clients: list[httpx.Client]) -> httpx.Client:
    if not hasattr(local, "http"):
        local.http = httpx.Client(limits=httpx.Limits(max_connections=2), timeout=30)
        clients.append(local.http)
    client: httpx.Client = local.http
    return client


def baseline_threads(sim_url: str, n: int) -> float:
    """The same HTTP calls without the pipeline: form POSTs, one httpx.Client per thread, as the dispatcher."""
    url = f"{sim_url}/2010-04-01/Accounts/{SIM.account_sid}/Messages.json"
    auth = (SIM.account_sid, SIM.auth_token)
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(i: int) -> int:
        data = {"To": f"+86138{i:08d}", "From": SIM.service_number, "Body": "基线", "StatusCallback": ""}
        return _thread_client(local, clients).post(url, data=data, auth=auth).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        codes = list(pool.map(post, range(n)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    assert set(codes) == {201}, set(codes)
    return n / elapsed


def baseline_asyncio(sim_url: str, n: int) -> tuple[float, int]:
    """For the threads-or-asyncio choice: the same POSTs from asyncio tasks sharing one AsyncClient."""
    url = f"{sim_url}/2010-04-01/Accounts/{SIM.account_sid}/Messages.json"
    errors = [0]

    async def main() -> float:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=128)
        async with httpx.AsyncClient(limits=limits, auth=(SIM.account_sid, SIM.auth_token)) as http:
            queue = iter(range(n))

            async def worker() -> None:
                for i in queue:
                    data = {"To": f"+86139{i:08d}", "From": SIM.service_number, "Body": "基线"}
                    try:
                        ok = (await http.post(url, data=data)).status_code == 201
                    except httpx.HTTPError:
                        ok = False
                    errors[0] += not ok

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            return n / (time.perf_counter() - started)

    return asyncio.run(main()), errors[0]


def provider_rate(sim_url: str, body_mark: str) -> tuple[float, int]:
    """Messages per second as the provider saw them arrive (first to last), for the marked messages."""
    inbox = httpx.get(f"{sim_url}/messages", headers=CONTROL, timeout=60).json()
    times = sorted(datetime.fromisoformat(m["created"]) for m in inbox if body_mark in m["body"])
    span = (times[-1] - times[0]).total_seconds()
    return (len(times) - 1) / span, len(times)


def main() -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    sim, sim_url = start_simulator()
    url, drop = database("sms")
    try:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=20)
        backend = make_url(url).get_backend_name()
        print(f"database: {backend}; {N} SMS, {LATENCY * 1000:.0f} ms simulated latency, concurrency {CONCURRENCY}")

        enqueue(engine, N, "free", "右安门街道")
        rss_before = rss_mb()
        elapsed, samples = run_dispatcher(engine, sim_url, N, 0, 0)
        rate = N / elapsed
        stats = httpx.get(f"{sim_url}/stats", headers=CONTROL, timeout=30).json()
        print(f"dispatcher, rate limit off: {rate:,.0f} msg/s ({elapsed:.1f} s for {N})")
        print(
            f"  simulator counted {stats['messages']} sends of {len(stats['sends_by_key'])} outbox ids; "
            f"sent twice: {len(stats['duplicates'])}"
        )
        print(f"  RSS (MB) before {rss_before:.0f}; at each tenth of the run: {' '.join(f'{x:.0f}' for x in samples)}")

        threads = baseline_threads(sim_url, N)
        print(f"baseline, raw httpx POSTs from {CONCURRENCY} threads: {threads:,.0f} msg/s")
        print(f"ratio dispatcher / baseline: {rate / threads:.2f}")
        asyncio_n = min(N, 3000)
        asyncio_rate, asyncio_errors = baseline_asyncio(sim_url, asyncio_n)
        print(
            f"  (asyncio, {CONCURRENCY} tasks on one httpx.AsyncClient: {asyncio_rate:,.0f} msg/s over {asyncio_n}, "
            f"{asyncio_errors} errors)"
        )

        enqueue(engine, LIMITED_N, "limited", "限速街道")
        elapsed, _ = run_dispatcher(engine, sim_url, LIMITED_N, LIMIT, N)
        seen, count = provider_rate(sim_url, "限速街道")
        print(
            f"rate limit {LIMIT:.0f}/s: the provider saw {seen:,.1f} msg/s over {count} messages "
            f"({(seen / LIMIT - 1) * 100:+.1f} %); wall clock incl. start and finish {LIMITED_N / elapsed:,.1f} msg/s"
        )
        print(f"RSS at the end {rss_mb():.0f} MB")

        root = sim_url.removesuffix("/sim")
        enqueue(engine, ALIYUN_N, "aliyun", "阿里云街道", prefix="+86135")
        elapsed = run_aliyun(engine, root, ALIYUN_N, N + LIMITED_N)
        aliyun_rate = ALIYUN_N / elapsed
        stats = httpx.get(f"{sim_url}/stats", headers=CONTROL, timeout=60).json()
        carried = stats["by_provider"].get("aliyun", 0)
        print(f"mainland route, dispatcher → Alibaba Cloud SDK: {aliyun_rate:,.0f} msg/s ({elapsed:.1f} s, {ALIYUN_N})")
        print(
            f"  simulator counted {carried} Alibaba Cloud sends; sent twice: "
            f"{len(stats['duplicates'])}; signatures rejected: {stats['injected'].get('aliyun_rejected_signature', 0)}"
        )
        aliyun_base = baseline_aliyun(root, ALIYUN_N)
        print(f"baseline, raw signed httpx POSTs to the same endpoint, {CONCURRENCY} threads: {aliyun_base:,.0f} msg/s")
        aliyun_ratio = aliyun_rate / aliyun_base
        print(f"ratio Alibaba Cloud SDK path / baseline: {aliyun_ratio:.2f}")
        engine.dispose()
        ok = (
            rate >= 500
            and abs(seen / LIMIT - 1) <= 0.05
            and not stats["duplicates"]
            and aliyun_ratio >= 0.8
            and carried == ALIYUN_N
        )
        print("PASS" if ok else "BELOW TARGET")
    finally:
        sim.terminate()
        sim.wait(10)
        drop()


if __name__ == "__main__":
    main()
