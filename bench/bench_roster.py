"""Who is on duty, at city scale: 360 units, both roles, a year of rotations, 10,000 overrides.

Figures (each next to a baseline measured in the same run):
  1. the whole board resolved in-process (resolve_many over 360 units) vs the raw queries loading the same rows;
  2. one unit's chain (street → district → city) vs the raw queries for those three units;
  3. GET /api/v1/oncall/board over HTTP (live uvicorn on loopback) vs GET /api/v1/units (the same 360 units, no
     roster work).
Targets from issue 3: board median < 20 ms, chain median < 2 ms, HTTP board p99 < 100 ms.

    python bench/bench_roster.py                       # a temporary SQLite file
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test python bench/bench_roster.py
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import select as sa_select
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from app import migrate
from app.auth import passwords
from app.db import make_engine, reader
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster import service as roster_service
from app.roster.models import MAX_COVER, Override, Rotation, Shift
from app.roster.resolve import ZONE_SLACK
from app.roster.timeline import wall_to_utc
from bench.benchlib import database, free_port, percentile, serve

SEED = 418
OVERRIDES = 10_000
ROUNDS = 200
HTTP_ROUNDS = 300
YEAR_START = date(2025, 5, 1)
ZONE_NAME = "Asia/Shanghai"


def populate(session: Session, rng: random.Random) -> tuple[list[Unit], str]:
    unit_service.load_units(session, unit_service.read_units_file(unit_service.default_data_path()))
    units = list(session.exec(select(Unit).order_by(col(Unit.path))))
    now = datetime.now(UTC)
    zone = roster_service.default_zone()
    people: dict[tuple[int, str], list[Person]] = {}
    serial = 0
    for u in units:
        assert u.id is not None
        for role, size in (("duty_officer", 4), ("leader", 3)):
            group = []
            for _ in range(size):
                serial += 1
                group.append(
                    Person(
                        name=f"p{serial}",
                        phone=f"+86137{serial:08d}",
                        unit_id=u.id,
                        roles=[role],
                        created_at=now,
                        updated_at=now,
                    )
                )
            people[(u.id, role)] = group
    password = "Bench-password-1"
    city = units[0]
    assert city.id is not None
    admin = Person(
        name="admin",
        phone="+8613900000000",
        unit_id=city.id,
        roles=["admin"],
        username="admin",
        password_hash=passwords.hash_password(password),
        created_at=now,
        updated_at=now,
    )
    session.add_all([admin, *(p for g in people.values() for p in g)])
    session.flush()
    # A year of rotations: each unit/role changes its rotation every quarter (four per year, the last open).
    rows: list[Rotation | Override | Shift] = []
    for (unit_id, role), group in people.items():
        shift = 1440 if role == "duty_officer" else 10080
        for q in range(4):
            start = YEAR_START + timedelta(days=91 * q)
            end = YEAR_START + timedelta(days=91 * (q + 1)) if q < 3 else None
            ids = [p.id for p in group if p.id is not None]
            rng.shuffle(ids)
            rows.append(
                Rotation(
                    unit_id=unit_id,
                    role=role,
                    name=f"Q{q + 1}",
                    participants=ids,
                    start_date=start,
                    handoff_time=dtime(8, 30),
                    shift_minutes=shift,
                    cycle_minutes=shift,
                    starts_at=wall_to_utc(datetime.combine(start, dtime(8, 30)), zone),
                    ends_at=wall_to_utc(datetime.combine(end, dtime(8, 30)), zone) if end else None,
                    created_at=now,
                )
            )
    span = datetime.combine(YEAR_START + timedelta(days=364), dtime()) - datetime.combine(YEAR_START, dtime())
    origin = wall_to_utc(datetime.combine(YEAR_START, dtime(8, 30)), zone)
    keys = list(people)
    for _ in range(OVERRIDES):
        unit_id, role = rng.choice(keys)
        start = origin + timedelta(minutes=rng.randrange(int(span.total_seconds() // 60)))
        rows.append(
            Override(
                unit_id=unit_id,
                role=role,
                person_id=rng.choice(people[(unit_id, role)]).id or 0,
                starts_at=start,
                ends_at=start + timedelta(hours=rng.choice([2, 4, 8, 12, 24, 48])),
                reason="bench",
                created_at=now,
            )
        )
    # A published monthly table at 60 units, for every day of the year.
    for unit_id, role in rng.sample(keys, 60):
        for day in range(364):
            start = origin + timedelta(days=day)
            rows.append(
                Shift(
                    unit_id=unit_id,
                    role=role,
                    person_id=rng.choice(people[(unit_id, role)]).id or 0,
                    starts_at=start,
                    ends_at=start + timedelta(days=1),
                    source="import",
                    created_at=now,
                )
            )
    session.add_all(rows)
    session.flush()
    return units, password


def raw_rows(session: Session, unit_ids: list[int] | None, at: datetime) -> int:
    """The baseline: the rows resolution needs, loaded with the same filters and no computation."""
    n = 0
    for model in (Override, Shift):
        q = sa_select(
            col(model.id),
            col(model.unit_id),
            col(model.role),
            col(model.person_id),
            col(model.starts_at),
            col(model.ends_at),
        ).where(col(model.starts_at) <= at, col(model.starts_at) > at - MAX_COVER, col(model.ends_at) > at)
        if unit_ids is not None:
            q = q.where(col(model.unit_id).in_(unit_ids))
        n += len(session.execute(q).all())
    q2 = sa_select(
        col(Rotation.id),
        col(Rotation.unit_id),
        col(Rotation.role),
        col(Rotation.participants),
        col(Rotation.start_date),
        col(Rotation.handoff_time),
        col(Rotation.shift_minutes),
        col(Rotation.cycle_minutes),
        col(Rotation.ends_at),
    ).where(
        col(Rotation.starts_at) <= at + ZONE_SLACK, (col(Rotation.ends_at).is_(None)) | (col(Rotation.ends_at) > at)
    )
    if unit_ids is not None:
        q2 = q2.where(col(Rotation.unit_id).in_(unit_ids))
    rotations = session.execute(q2).all()
    ids = {i for r in rotations for i in r[3][:1]}
    n += len(rotations) + len(session.exec(select(Person).where(col(Person.id).in_(ids))).all())
    return n


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


def line(label: str, figure: list[float], baseline: list[float], stat: str, target: float) -> bool:
    pick = statistics.median if stat == "median" else (lambda v: percentile(v, 0.99))
    f, b = pick(figure), pick(baseline)
    ok = f < target
    verdict = "ok" if ok else "MISSED"
    extra = f" (median {statistics.median(figure):.2f} vs {statistics.median(baseline):.2f})" if stat == "p99" else ""
    print(
        f"{label:<44} {stat} {f:7.2f} ms   baseline {b:7.2f} ms   ratio {f / b:5.2f}   target < {target:g} ms"
        f"  {verdict}{extra}"
    )
    return ok


def main() -> None:
    began = time.monotonic()
    logging.disable(logging.INFO)
    rng = random.Random(SEED)
    url, cleanup = database("roster")
    try:
        migrate.upgrade(url)
        engine = make_engine(url)
        roster_service.set_default_timezone(ZONE_NAME)
        with Session(engine, expire_on_commit=False) as session:
            units, password = populate(session, rng)
            session.commit()
        print(
            f"database: {make_url(url).get_backend_name()}; 360 units, 2,880 rotations, {OVERRIDES:,} overrides, "
            f"21,840 explicit shifts; set-up {time.monotonic() - began:.1f} s"
        )
        year = [
            wall_to_utc(datetime.combine(YEAR_START, dtime()), roster_service.default_zone())
            + timedelta(minutes=rng.randrange(364 * 24 * 60))
            for _ in range(ROUNDS)
        ]
        read = reader(engine)

        def board_once(at_iter: Iterator[datetime] = iter(year * 4)) -> None:
            with Session(read) as s:
                units_ = list(s.exec(select(Unit)))
                roster_service.resolve_many_brief(s, units=units_, at=next(at_iter))

        def board_people(at_iter: Iterator[datetime] = iter(year * 4)) -> None:
            with Session(read) as s:
                units_ = list(s.exec(select(Unit)))
                roster_service.resolve_many(s, units=units_, at=next(at_iter))

        def board_raw(at_iter: Iterator[datetime] = iter(year * 4)) -> None:
            with Session(read) as s:
                list(s.exec(select(Unit)))
                raw_rows(s, None, next(at_iter))

        streets = [u for u in units if u.tier == "street"]

        def chain_once(at_iter: Iterator[datetime] = iter(year * 4)) -> None:
            with Session(read) as s:
                chain = unit_service.chain(s, rng.choice(streets))
                roster_service.resolve_many(s, units=chain, at=next(at_iter))

        def chain_raw(at_iter: Iterator[datetime] = iter(year * 4)) -> None:
            with Session(read) as s:
                chain = unit_service.chain(s, rng.choice(streets))
                raw_rows(s, [u.id for u in chain if u.id is not None], next(at_iter))

        for fn in (board_once, board_people, board_raw, chain_once, chain_raw):
            timed(fn, 10)  # warm caches and the connection pool
        results = [
            line(
                "board: 360 units × 2 roles (id, name, phone)",
                timed(board_once, ROUNDS),
                timed(board_raw, ROUNDS),
                "median",
                20,
            ),
            line("chain: street → district → city", timed(chain_once, ROUNDS), timed(chain_raw, ROUNDS), "median", 2),
        ]
        # Informational: the same with whole Person rows (resolve_many), as the escalation engine gets them.
        line("board: resolve_many → Person rows", timed(board_people, ROUNDS), timed(board_raw, ROUNDS), "median", 20)
        # A sanity check that the numbers measure real answers: the board at a random time has nobody missing.
        with Session(read) as s:
            found = roster_service.resolve_many(s, units=list(s.exec(select(Unit))), at=year[0])
            assert all(v is not None for v in found.values()), "the benchmark roster has a gap"

        # The server runs in its own process, as in production, so client and server do not share one GIL.
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DUTYLINE_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
            "DUTYLINE_TIMEZONE": ZONE_NAME,
            "DUTYLINE_LOG_LEVEL": "WARNING",
        }
        server = serve(["app.main:create_app", "--factory"], env, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                token = http.post("/api/v1/auth/token", data={"username": "admin", "password": password}).json()
                headers = {"Authorization": f"Bearer {token['access_token']}"}
                ats = [a.isoformat() for a in year]

                def http_board(it: Iterator[str] = iter(ats * 4)) -> None:
                    r = http.get("/api/v1/oncall/board", params={"at": next(it)}, headers=headers)
                    assert r.status_code == 200 and len(r.json()["items"]) == 360, r.text

                def http_units() -> None:
                    r = http.get("/api/v1/units", headers=headers)
                    assert r.status_code == 200 and len(r.json()["items"]) == 360

                timed(http_board, 20)
                timed(http_units, 20)
                results.append(
                    line(
                        "HTTP GET /api/v1/oncall/board (loopback)",
                        timed(http_board, HTTP_ROUNDS),
                        timed(http_units, HTTP_ROUNDS),
                        "p99",
                        100,
                    )
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
        engine.dispose()
        print("baselines: raw queries loading the same rows (no resolution); GET /api/v1/units (360 units, no roster)")
        print(f"total {time.monotonic() - began:.1f} s")
        if not all(results):
            sys.exit(1)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
