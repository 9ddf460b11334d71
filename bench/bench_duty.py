"""Roll-calls and notices at city scale, on the real app over HTTP with the Twilio simulator in its own process.

    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/bench_duty.py

With the demo roster (all 360 units staffed, both duty roles: 720 posts):
1. The city calls the roll of its whole subtree (359 units x 2 roles = 718 posts, plus the city's own when called
   by the city? no: a roll-call covers the units below, so 718): the API's answer time, and the time until the last
   page was accepted by the provider (outbox sent_at), next to the same number of raw sends (the twilio REST call,
   form POSTs from the same number of threads as the dispatcher) to the same simulator.
2. Everyone answers at once: the simulator posts every phone's reply "1 <code>" to our inbound webhook (signed, as
   Twilio does) from BENCH_CONCURRENCY threads; the time until all are recorded as answered.
3. A notice to every unit below the city (359 receipts): API time and the last page accepted.
0 duplicates: each post paged once (outbox rows per chase) and the simulator saw each outbox id once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import demo, migrate
from app.clock import ManualClock
from app.db import make_engine, transaction
from app.notify.simulator import SimulatorConfig
from app.org import units as unit_service
from bench.benchlib import cpu_seconds, database, free_port, load_average, serve

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
LATENCY = float(os.environ.get("BENCH_LATENCY", "0.05"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "120"))
SECRET = "bench-secret-key-not-for-production"
SIM = SimulatorConfig()  # random credentials, handed to the simulator's process through its environment
CONTROL = {"Authorization": f"Bearer {SIM.control_token}"}  # the simulator's phone side needs its control token
SIM_SCRIPT = """
import sys, uvicorn
from app.notify.simulator import SimulatorConfig, standalone
app, _ = standalone(SimulatorConfig.from_env(latency=float(sys.argv[2]), send_callbacks=False, inbound_url=sys.argv[3]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def wait_for(what: str, probe: Callable[[], int], target: int) -> float:
    """Seconds (wall clock, from now) until probe() reaches target."""
    started = time.perf_counter()
    while True:
        got = probe()
        if got >= target:
            return time.perf_counter() - started
        if time.perf_counter() - started > TIMEOUT:
            raise SystemExit(f"{what}: {got} of {target} after {TIMEOUT:.0f} s")
        time.sleep(0.05)


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one() or 0)


def raw_sends(sim_url: str, n: int) -> float:
    """The same provider calls without our pipeline: n form POSTs from CONCURRENCY threads, one client each."""
    url = f"{sim_url}/2010-04-01/Accounts/{SIM.account_sid}/Messages.json"
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(i: int) -> int:
        if not hasattr(local, "http"):
            local.http = httpx.Client(auth=(SIM.account_sid, SIM.auth_token))
            clients.append(local.http)
        data = {"To": f"+86136{i:08d}", "From": SIM.service_number, "Body": "基线"}
        return int(local.http.post(url, data=data).status_code)

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        codes = set(pool.map(post, range(n)))
    elapsed = time.perf_counter() - started
    for c in clients:
        c.close()
    assert codes == {201}, codes
    return elapsed


def sent_since(engine: Engine, code: str, template: str) -> Callable[[], int]:
    sql = ("SELECT count(*) FROM outbox_message WHERE incident_code = :code AND template = :t "
           "AND status IN ('sent', 'delivered')")  # fmt: skip
    return lambda: scalar(engine, sql, code=code, t=template)


def main() -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores shared with other engineers' work")
    url, drop = database("duty")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=10)
        with transaction(engine) as s:
            unit_service.load_units(s, unit_service.read_units_file(unit_service.default_data_path()))
            report = demo.install(s, clock=ManualClock(datetime.now(UTC)))
        password = next(line.split()[-1] for line in report.splitlines() if "password:" in line)
        print(f"database: {make_url(url).get_backend_name()}; 360 units with the demo roster; "
              f"simulator latency {LATENCY * 1000:.0f} ms; dispatcher concurrency {CONCURRENCY}")  # fmt: skip
        app_port, sim_port = free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}/sim"
        inbound = f"http://127.0.0.1:{app_port}/twilio/sms/inbound"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", SIM_SCRIPT, str(sim_port), str(LATENCY), inbound],
                cwd=ROOT,
                env={**os.environ, **SIM.credentials_env()},
            )
        )
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DUTYLINE_SECRET_KEY": SECRET,
            "DUTYLINE_LOG_LEVEL": "WARNING",
            "DUTYLINE_SIMULATOR": "off",
            "DUTYLINE_SMS_DAILY_BUDGET": "1000",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
            "TWILIO_ACCOUNT_SID": SIM.account_sid,
            "TWILIO_AUTH_TOKEN": SIM.auth_token,
            "TWILIO_FROM_NUMBER": SIM.service_number,
            "TWILIO_API_BASE_URL": sim_url,
            "DUTYLINE_DISPATCH_CONCURRENCY": str(CONCURRENCY),
            "DUTYLINE_SMS_ROUTES": "*=twilio",  # the simulator process speaks Twilio's API
            "DUTYLINE_VOICE_ROUTES": "*=twilio",
        }
        procs.append(serve(["app.main:create_app", "--factory"], env, app_port))
        base = f"http://127.0.0.1:{app_port}"
        with httpx.Client(base_url=base, timeout=60) as http:
            token = http.post("/api/v1/auth/token", data={"username": "city.duty", "password": password})
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

            # A warm server: one small roll-call first (a district's streets), its pages left to go out.
            warm = http.post("/api/v1/roll-calls", json={"unit_code": "110106", "scope": "children"}, headers=auth)
            assert warm.status_code == 201, warm.text
            time.sleep(5)
            started = time.perf_counter()
            r = http.post("/api/v1/roll-calls", json={"scope": "subtree"}, headers=auth)
            api = time.perf_counter() - started
            assert r.status_code == 201, r.text
            rc = r.json()
            posts = rc["summary"]["posts"] - rc["summary"]["vacant"]
            last = api + wait_for("roll-call pages", sent_since(engine, rc["code"], "rollcall_page"), posts)
            baseline = raw_sends(sim_url, posts)
            print(f"roll-call of {rc['summary']['posts']} posts ({rc['summary']['vacant']} vacant): API {api:.3f} s; "
                  f"last page accepted by the provider {last:.2f} s after the request")  # fmt: skip
            print(f"  baseline: {posts} raw sends to the same simulator from {CONCURRENCY} threads: {baseline:.2f} s")

            # Everyone answers at once: each phone's reply goes through the simulator to our signed webhook.
            # One reply per page: a person holding two posts replies twice.
            phones = [str(row[0]) for row in _rows(engine, "SELECT recipient FROM outbox_message "
                                                          "WHERE incident_code = :c AND template = 'rollcall_page'",
                                                   c=rc["code"])]  # fmt: skip
            answered = (f"SELECT count(*) FROM roll_call_entry WHERE roll_call_id = {int(rc['id'])} "
                        "AND state = 'answered'")  # fmt: skip

            # One client per thread, as for the raw sends: a new client per call (certificates loaded each time)
            # took a whole core of the bench's own process and held the answers back.
            phone_side = threading.local()
            clients: list[httpx.Client] = []

            def reply(number: str) -> int:
                if not hasattr(phone_side, "http"):
                    phone_side.http = httpx.Client(headers=CONTROL, timeout=60)
                    clients.append(phone_side.http)
                http: httpx.Client = phone_side.http
                return http.post(f"{sim_url}/messages", json={"from": number, "body": f"1 {rc['code']}"}).status_code

            twice = {p for p in phones if phones.count(p) > 1}

            if os.environ.get("BENCH_PROBE"):
                for number in phones[:5]:
                    t = time.perf_counter()
                    reply(number)
                    print(f"  one reply alone: {time.perf_counter() - t:.3f} s")
            pids = {"service": [procs[1].pid], "simulator": [procs[0].pid], "phones": [os.getpid()]}
            cpu = {name: cpu_seconds(p) for name, p in pids.items()}
            started = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                codes = set(pool.map(reply, sorted(set(phones))))
                codes |= set(pool.map(reply, sorted(twice)))  # their second reply, after the first was recorded
            recorded = wait_for("answers", lambda: scalar(engine, answered), posts) + (time.perf_counter() - started)
            for c in clients:
                c.close()
            print(f"  {len(phones)} answers at once (simulator -> signed webhook, {CONCURRENCY} threads): all "
                  f"recorded {recorded:.2f} s after the first was sent; replies {sorted(codes)}")  # fmt: skip
            per = {name: (cpu_seconds(p) - cpu[name]) * 1000 / len(phones) for name, p in pids.items()}
            print(f"  CPU per answer: service {per['service']:.1f} ms, simulator {per['simulator']:.1f} ms, "
                  f"this bench's phone threads {per['phones']:.1f} ms "
                  f"(/proc); load average {load_average()}")  # fmt: skip

            started = time.perf_counter()
            body = {
                "title": "关于做好汛期值守工作的通知",
                "body": "各单位严格落实24小时值班。",
                "to": {"scope": "subtree"},
            }
            n = http.post("/api/v1/notices", json=body, headers=auth)
            api_n = time.perf_counter() - started
            assert n.status_code == 201, n.text
            notice = n.json()
            units = notice["summary"]["units"]
            last_n = api_n + wait_for("notice pages", sent_since(engine, notice["code"], "notice_page"), units)
            print(f"notice to {units} units: API {api_n:.3f} s; last page accepted {last_n:.2f} s after the request")
            print(f"  baseline: {units} raw sends: {raw_sends(sim_url, units):.2f} s")

            stats = httpx.get(f"{sim_url}/stats", headers=CONTROL, timeout=30).json()
            per_chase = scalar(engine, "SELECT count(*) FROM (SELECT subject FROM outbox_message WHERE subject LIKE "
                                       "'chase:%' AND template IN ('rollcall_page', 'notice_page') GROUP BY subject "
                                       "HAVING count(*) > 1) x")  # fmt: skip
            print(f"duplicates: posts paged twice {per_chase}; outbox ids the simulator saw twice "
                  f"{len(stats['duplicates'])}")  # fmt: skip
            ok = api < 1 and last < 10 and recorded < 10 and api_n < 1 and last_n < 10
            print("PASS" if ok and not per_chase and not stats["duplicates"] else "BELOW TARGET")
        engine.dispose()
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        drop()


def _rows(engine: Engine, sql: str, **params: object) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params).all()]


if __name__ == "__main__":
    main()
