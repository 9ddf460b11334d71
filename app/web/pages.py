"""What every console page needs: templates with local-time filters, the signed-in viewer, CSRF checks."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import labels
from app.auth import service as auth_service
from app.auth.principal import Principal
from app.errors import DomainError, Unauthenticated
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster.resolve import default_zone
from app.routers.deps import ClockDep, SessionDep
from app.web import errors as web_errors
from app.web import session as web_session

log = logging.getLogger("dutyline.console")
WEB_DIR = Path(__file__).parent
# Pages carry no inline script or style, so the policy can forbid both.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant as wall-clock time in the configured zone (DUTYLINE_TIMEZONE)."""
    if value is None:
        return ""
    return value.astimezone(default_zone()).strftime(fmt)


_PHONE_NUMBER = re.compile(r"^\+?\d[\d -]{5,19}$")


def tel(value: str | None) -> Markup:
    """A phone number as a link the phone dials when tapped; anything else (a webhook's URL) as plain text."""
    if not value:
        return Markup("")
    if not _PHONE_NUMBER.match(value):
        return escape(value)
    digits = "".join(ch for ch in value if ch.isdigit() or ch == "+")
    return Markup('<a class="phone" href="tel:{}">{}</a>').format(digits, value)


templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
templates.env.filters["local"] = local
# One set of labels (app.labels): `{{ m.status|label('delivery_statuses') }}`, `{{ level(inc.severity) }}`.
templates.env.filters["label"] = lambda code, group: labels.label(group, code)
templates.env.filters["role_label"] = lambda r: labels.label("roles", r)
templates.env.filters["tier_label"] = lambda t: labels.label("tiers", t)
templates.env.globals["level"] = labels.level
templates.env.filters["tel"] = tel
templates.env.globals["zone_name"] = lambda: default_zone().key


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfRefused(Exception):
    pass


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    person: Person
    unit: Unit
    csrf: str


def get_viewer(request: Request, session: SessionDep, clock: ClockDep) -> Viewer:
    """The signed-in person behind the session cookie; otherwise the browser is sent to the sign-in page."""
    found = web_session.read_session(
        request.cookies.get(web_session.SESSION_COOKIE), secret=request.app.state.secret_key, clock=clock
    )
    # Back to the page asked for after signing in, with its query (a report's unit and period, a filter).
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if found is None:
        raise LoginRequired(here)
    try:
        principal = auth_service.person_principal(session, found.person_id)
    except Unauthenticated as exc:
        raise LoginRequired(here) from exc
    person = session.get(Person, found.person_id)
    unit = session.get(Unit, principal.unit_id)
    assert person is not None and unit is not None
    return Viewer(principal=principal, person=person, unit=unit, csrf=found.csrf)


async def csrf_token_of(request: Request) -> str | None:
    """The token a post carries: the form field, or the header for fetch() calls."""
    header = request.headers.get(web_session.CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette caches it; the handler's Form/File parameters read the same
        value = form.get(web_session.CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def require_csrf(request: Request) -> None:
    """Every state-changing console request must echo the session's CSRF token."""
    clock = request.app.state.clock
    found = web_session.read_session(
        request.cookies.get(web_session.SESSION_COOKIE), secret=request.app.state.secret_key, clock=clock
    )
    if found is None:
        raise CsrfRefused()
    if not web_session.tokens_match(found.csrf, await csrf_token_of(request)):
        raise CsrfRefused()


UnitGroups = list[tuple[Unit, list[Unit]]]


def unit_choices(session: Session, viewer: Viewer, *, include_above: bool = False) -> UnitGroups:
    """The units a picker offers: the viewer's unit and its subtree (with `include_above`, the chain above too),
    grouped by district where the tree has one. The server still checks whatever comes back."""
    return unit_service.grouped_subtree(session, viewer.unit, above=include_above)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
# Declared before the session dependency in a handler's signature, so the check runs before any work.
CsrfDep = Annotated[None, Depends(require_csrf)]


def render(
    request: Request, name: str, context: dict[str, Any], *, viewer: Viewer | None = None, status_code: int = 200
) -> HTMLResponse:
    ctx = {"viewer": viewer, "csrf": viewer.csrf if viewer else "", "flash": request.query_params.get("msg"), **context}
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(path: str, *, msg: str | None = None) -> RedirectResponse:
    target = path if msg is None else f"{path}{'&' if '?' in path else '?'}msg={quote(msg)}"
    return RedirectResponse(target, status_code=303)


def errors_of(exc: DomainError | ValidationError) -> tuple[str, dict[str, str]]:
    """A summary and field → message in Chinese, for showing a refusal next to the form fields (app.web.errors)."""
    return web_errors.refusal(exc)


def status_of(exc: DomainError | ValidationError) -> int:
    return web_errors.status_of(exc)


def is_console(request: Request) -> bool:
    """A console page (HTML), as opposed to the API and the other machine paths (JSON)."""
    path = request.url.path
    return (path == "/console" or path.startswith("/console/")) and not path.startswith("/console/static/")


def error_page(
    request: Request, status: int, exc: DomainError | None = None, *, detail: str | None = None
) -> HTMLResponse:
    """A console error page in Chinese: the title for the status and what went wrong."""
    title, message = web_errors.page(status, exc)
    if detail:
        title, message = ("提交的内容有误", detail) if not detail.startswith("链接") else (title, detail)
    return render(request, "error.html", {"title": title, "message": message, "status": status}, status_code=status)


def install(app: FastAPI) -> None:
    """Static files and the two console-specific answers: to the sign-in page, and 403 for a missing CSRF token."""
    app.mount("/console/static", StaticFiles(directory=str(WEB_DIR / "static")), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/console/login?next={quote(exc.next_path)}", status_code=303)

    _console_error_pages(app)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return render(
            request,
            "error.html",
            {"title": "请求被拒绝", "message": "表单已过期或缺少安全校验（CSRF），请刷新页面后重试。"},
            status_code=403,
        )


def _console_error_pages(app: FastAPI) -> None:
    """Console paths answer every error with a Chinese HTML page; every other path keeps the API's JSON handler."""
    handlers = app.exception_handlers
    api_domain = handlers[DomainError]
    api_validation = handlers[RequestValidationError]
    api_http = handlers[StarletteHTTPException]

    async def domain(request: Request, exc: Exception) -> Response:
        if is_console(request) and isinstance(exc, DomainError):
            if exc.status == 401:
                return RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)
            return error_page(request, exc.status, exc)
        return await _call(api_domain, request, exc)

    async def validation(request: Request, exc: Exception) -> Response:
        if is_console(request) and isinstance(exc, RequestValidationError):
            return error_page(request, 422, detail=web_errors.request_errors(exc.errors()))
        return await _call(api_validation, request, exc)

    async def http(request: Request, exc: Exception) -> Response:
        if is_console(request) and isinstance(exc, StarletteHTTPException):
            return error_page(request, exc.status_code)
        return await _call(api_http, request, exc)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception and re-raises it after this answer; the API keeps its plain 500.
        log.error("unexpected error", extra={"path": request.url.path, "error": type(exc).__name__})
        if is_console(request):
            return error_page(request, 500)
        return PlainTextResponse("Internal Server Error", status_code=500)

    app.add_exception_handler(DomainError, domain)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)


async def _call(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    if inspect.isawaitable(result):
        result = await result
    assert isinstance(result, Response)
    return result
