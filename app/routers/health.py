from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.errors import Unauthenticated

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers", responses={503: {"description": "database unreachable"}})
def readyz(request: Request) -> JSONResponse:
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "error": type(exc).__name__}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics: incidents, messages, queue depth, escalation lateness",
    description="With DUTYLINE_METRICS_TOKEN set, send `Authorization: Bearer <that token>`.",
)
def metrics(request: Request) -> Response:
    token: str | None = request.app.state.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthenticated("/metrics needs Authorization: Bearer <DUTYLINE_METRICS_TOKEN>")
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
