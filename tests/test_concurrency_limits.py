"""The two guards that keep a burst of requests moving: the cap on requests in flight and SQLite's writer queue."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.db import make_engine, transaction
from app.middleware import InFlightLimit


def test_no_more_requests_than_the_limit_are_handled_at_once() -> None:
    inside = 0
    most = 0
    release = asyncio.Event()

    async def slow(_: Request) -> JSONResponse:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await release.wait()
        inside -= 1
        return JSONResponse({"ok": True})

    async def quick(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = InFlightLimit(
        Starlette(routes=[Route("/work", slow), Route("/healthz", quick)]), limit=3, exempt=("/healthz",)
    )

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            pending = [asyncio.create_task(client.get("/work")) for _ in range(10)]
            for _ in range(50):  # let every request reach the app or the queue
                await asyncio.sleep(0)
            assert inside == 3  # three handled, seven waiting their turn
            assert (await client.get("/healthz")).status_code == 200  # exempt: not stuck behind the queue
            release.set()
            return [r.status_code for r in await asyncio.gather(*pending)]

    assert asyncio.run(scenario()) == [200] * 10
    assert most == 3


def test_sqlite_writers_wait_their_turn_instead_of_failing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    holding = threading.Event()
    let_go = threading.Event()
    order: list[str] = []

    def first() -> None:
        with transaction(engine) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            let_go.wait(10)
            order.append("first commits")

    def second() -> None:
        holding.wait(10)
        with transaction(engine) as session:
            session.execute(text("INSERT INTO t VALUES (2)"))
            order.append("second writes")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    holding.wait(10)
    assert order == []  # the second writer is queued behind the first, not failing
    let_go.set()
    for t in threads:
        t.join(15)
    assert order == ["first commits", "second writes"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2
    engine.dispose()
