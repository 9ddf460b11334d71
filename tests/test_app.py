from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.factories import signed_in

APP = Path(__file__).resolve().parent.parent / "app"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_body_over_the_limit_is_413(client: TestClient, session: Session, clock: ManualClock) -> None:
    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    big = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    r = client.post("/api/v1/people", content=big, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming too
        for _ in range(20):
            yield b"x" * 100_000

    r = client.post("/api/v1/people", content=chunks(), headers={**headers, "content-type": "application/json"})
    assert r.status_code == 413


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert client.delete("/healthz").status_code == 405


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/people" in spec["paths"] and "/api/v1/auth/token" in spec["paths"]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it; `from app import config` counts as `app.config`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"  # the check below reads absolute names only
            if node.module:
                names.add(node.module)
                if node.module.split(".")[0] == "app":  # the names may be modules: `from app import config`
                    names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


# Where the web framework and the settings may be used: the app factory, the runtime wiring, the API routers,
# the console, the provider simulator (an ASGI app of its own) and the CLI (it reads the settings to serve).
WEB_LAYER = ("main.py", "cli.py", "runtime/", "routers/", "web/", "notify/simulator/")
# Named exceptions, each with its reason.
EXCEPTIONS = {
    # The ASGI middleware main.py wraps the whole app in (body limit, in-flight cap, access log): the HTTP edge,
    # not domain code; it imports only starlette's ASGI type aliases.
    "middleware.py": "starlette.types",
}


def _web_imports(path: Path) -> set[str]:
    return {m for m in _imports(path) if m.split(".")[0] in {"fastapi", "starlette"} or m == "app.config"}


def test_only_the_web_layer_imports_fastapi_or_settings() -> None:
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP).as_posix()
        if rel == "config.py" or rel.startswith(WEB_LAYER):
            continue
        bad = _web_imports(path) - ({EXCEPTIONS[rel]} if rel in EXCEPTIONS else set())
        if bad:
            offenders.append(f"app/{rel}: {sorted(bad)}")
    assert offenders == []
    # An exception that no longer imports what it was excused for is stale: drop it from the list.
    assert {rel: _web_imports(APP / rel) for rel in EXCEPTIONS} == {rel: {m} for rel, m in EXCEPTIONS.items()}


def test_domain_code_never_imports_the_web_layer() -> None:
    """The other direction: the domain is called by the web layer, never the reverse (app/runtime says so too)."""
    layer = {"app.main", "app.cli", "app.runtime", "app.routers", "app.web"}
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP).as_posix()
        if rel.startswith(WEB_LAYER):
            continue
        bad = {m for m in _imports(path) if ".".join(m.split(".")[:2]) in layer}
        if bad:
            offenders.append(f"app/{rel}: {sorted(bad)}")
    assert offenders == []


def test_the_layering_check_sees_every_way_of_importing(tmp_path: Path) -> None:
    """The check above must see a settings import by name and framework imports inside a function."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "\n".join(
            [
                "from app import config",
                "def f():",
                "    import fastapi.responses",
                "    from starlette.requests import Request",
            ]
        ),
        encoding="utf-8",
    )
    assert _web_imports(probe) == {"app.config", "fastapi.responses", "starlette.requests"}


def test_an_unreachable_database_is_a_clear_503_not_a_500() -> None:
    from app.clock import SystemClock
    from app.config import Settings
    from app.db import make_engine
    from app.main import create_app

    down = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=2")
    settings = Settings(DUTYLINE_SECRET_KEY="k" * 40, DUTYLINE_DISPATCHER=False, DUTYLINE_SCHEDULER=False)
    with TestClient(create_app(settings, engine=down, clock=SystemClock())) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503
        r = c.post("/api/v1/auth/token", data={"username": "someone", "password": "whatever-1"})
        assert r.status_code == 503
        assert r.json()["code"] == "database_unavailable" and r.headers["Retry-After"]
        r = c.get("/api/v1/units", headers={"X-API-Key": "dlk_x_y"})
        assert r.status_code == 503
    down.dispose()


def test_metrics_are_prometheus_text_and_a_token_protects_them(
    engine: Engine, clock: ManualClock, settings: Settings
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with TestClient(create_app(settings, engine=engine, clock=clock)) as open_client:
        r = open_client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert "dutyline_dispatch_queue_depth" in {f.name for f in text_string_to_metric_families(r.text)}

    token = "metrics-token-0123456789abcdef"
    guarded = settings.model_copy(update={"metrics_token": token})
    with TestClient(create_app(guarded, engine=engine, clock=clock)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {token}"}):
            r = c.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
            assert "dutyline_" not in r.text
        r = c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert "dutyline_dispatch_queue_depth" in {f.name for f in text_string_to_metric_families(r.text)}
        assert c.get("/healthz").status_code == 200  # the health checks stay open
