"""create_app(): routers, error handlers, middleware and the lifespan that builds the engine."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import metrics
from app.auth import tokens
from app.clock import Clock, SystemClock
from app.config import Settings, get_settings
from app.db import make_engine, max_requests_in_flight, transaction
from app.errors import DomainError, TooManyRequests
from app.escalation import chase
from app.escalation.models import Chase
from app.incidents import acks as incident_acks
from app.incidents import delivery as incident_delivery
from app.middleware import AccessLog, BodyLimit, InFlightLimit
from app.notices import acks as notice_acks
from app.notices import chase as notice_chase
from app.notify import budget as sms_budget
from app.notify import inbound
from app.notify.models import OutboxMessage
from app.rollcall import acks as rollcall_acks
from app.rollcall import chase as rollcall_chase
from app.roster import service as roster_service
from app.routers import (
    agencies,
    audit,
    auth,
    callbacks,
    health,
    heartbeats,
    incidents,
    message_templates,
    notices,
    oncall,
    people,
    reports,
    robots,
    rollcalls,
    rosters,
    rules,
    shifts,
    twilio,
    units,
    webhooks,
)
from app.routers import hazards as hazard_routes
from app.runtime import notify as notify_app
from app.runtime import scheduler as scheduling
from app.schemas import ErrorBody
from app.web import console, console_incidents
from app.web import notices as console_notices
from app.web import pages as console_pages
from app.web import reports as console_reports
from app.web import rollcall as console_rollcall

log = logging.getLogger("dutyline")

DOCS_ASSETS = "/static-offline-docs"  # Swagger UI and ReDoc files, shipped in the fastapi-offline package

DESCRIPTION = """
Emergency duty rosters and three-tier incident escalation (city → district → street/township).

Sign in with `POST /api/v1/auth/token` (OAuth2 password form) and send `Authorization: Bearer <token>`;
agency systems send `X-API-Key`. Every 4xx answer has the same JSON shape:
`{"code", "message", "detail", "errors": [{"field", "message"}]}`.
"""


# Every operation may answer these, always in the one error shape (documented so clients and fuzzers know).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    # Errors are JSON on every route, also where the success is a CSV or a calendar (named, not left to the
    # route's own media type).
    status: {
        "model": ErrorBody,
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, description in {
        400: "the body could not be read (not UTF-8, or not JSON)",
        401: "not signed in, or a bad token or API key",
        403: "outside your permissions or your unit's subtree",
        404: "no such object (or not in your scope)",
        409: "conflicts with the current state",
        413: "request body too large",
        422: "invalid input; `errors` names each field",
        429: "too many attempts",
        503: "the database is unavailable; retry",
    }.items()
}


def error_response(
    status: int,
    code: str,
    message: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"code": code, "message": message, "detail": message, "errors": errors or []}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(
            exc.status, exc.code, exc.message, [{"field": f.field, "message": f.message} for f in exc.fields], headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            errors.append({"field": _field_of(tuple(err.get("loc", ()))), "message": message})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return error_response(422, "validation_error", summary or "invalid request", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable", extra={"error": type(exc).__name__})
        return error_response(
            503, "database_unavailable", "the database is unavailable; retry shortly", headers={"Retry-After": "5"}
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return error_response(
                503, "database_unavailable", "the database connection was lost; retry", headers={"Retry-After": "5"}
            )
        raise exc


def _chase_reply(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> inbound.AckOutcome:
    """A reply to a chase's page ("chase:<id>"): roll-calls and notices answer it their own way (the channel on
    record, the signer on duty); every other kind through the chase itself."""
    row = session.get(Chase, int((page.subject or ":0").split(":", 1)[1]))
    handler = _DUTY_REPLIES.get(row.kind) if row is not None else None
    return (handler or chase.answer_page)(session, clock=clock, phone=phone, page=page, via=via)


_DUTY_REPLIES: dict[str, inbound.Acknowledger] = {
    rollcall_chase.ROLLCALL.name: rollcall_acks.answer_page,
    rollcall_chase.SUMMARY.name: rollcall_acks.noted,
    notice_chase.NOTICE.name: notice_acks.sign_page,
    notice_chase.UPDATE.name: notice_acks.sign_page,
    notice_chase.OVERDUE.name: rollcall_acks.noted,
    notice_chase.CANCELLED.name: rollcall_acks.noted,
}


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, clock: Clock | None = None
) -> FastAPI:
    """The application. Tests pass their own engine and clock; otherwise both come from settings."""
    settings = settings or get_settings()
    in_flight = max_requests_in_flight(settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        # Worker threads to spare beyond the requests in flight (see InFlightLimit).
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, in_flight + 8)
        app.state.engine = engine or make_engine(settings.database_url, pool_size=settings.db_pool_size)
        # Reports read from a replica when there is one, so a city's year of figures never slows paging.
        own_read_engine = settings.database_read_url is not None
        app.state.read_engine = (
            make_engine(settings.database_read_url, pool_size=settings.db_pool_size)
            if settings.database_read_url
            else app.state.engine
        )
        with transaction(app.state.engine) as session:
            app.state.secret_key = settings.secret_key or tokens.instance_secret(session, "jwt", clock=app.state.clock)
        notify_app.start(app)
        app.state.metrics, lateness = metrics.build_registry(app.state.engine, app.state.clock)
        notify_app.install_metrics(app)
        scheduler = (
            scheduling.build(app.state.engine, app.state.clock, settings, lateness) if settings.scheduler else None
        )
        if scheduler is not None:
            scheduler.start()
        if own_engine:
            # A server process (tests pass their own engine and start many apps in one process): what is alive
            # now (modules, routes, models, caches) lives as long as the process. Out of the collector's reach, a
            # full collection no longer walks it, which doubled one tick batch in five (bench_hazards' tail).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            notify_app.stop(app)
            if own_read_engine:
                app.state.read_engine.dispose()
            if own_engine:
                app.state.engine.dispose()

    # FastAPIOffline: the same FastAPI, with /docs and /redoc loading their scripts and styles from the service
    # (`/static-offline-docs/`), never from a CDN: duty offices run on intranets without internet (PRODUCT.md §7).
    app = FastAPIOffline(
        title="dutyline",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        static_url=DOCS_ASSETS,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    install_error_handlers(app)
    roster_service.set_default_timezone(settings.timezone)
    sms_budget.set_daily_budget(settings.sms_daily_budget)
    for module in (health, auth, units, people, agencies, audit, rosters, shifts, oncall, incidents, rules,
                   heartbeats, webhooks, robots, twilio, callbacks, message_templates, console, console_incidents,
                   rollcalls, notices, console_rollcall, console_notices, reports, console_reports):  # fmt: skip
        app.include_router(module.router)
    console_pages.install(app)
    hazard_routes.install(app, settings)
    notify_app.install(app, settings)
    app.state.acknowledger = inbound.routed({chase.SUBJECT: _chase_reply}, incident_acks.acknowledge_page)
    app.state.delivery_observers.append(incident_delivery.on_delivery)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, larger=hazard_routes.UPLOAD_LIMITS)
    app.add_middleware(InFlightLimit, limit=in_flight, exempt=("/healthz", "/sim/"))
    app.add_middleware(AccessLog)
    return app
