"""What every console page needs: templates with local-time filters, the signed-in viewer, CSRF checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlmodel import Session

from app import labels
from app.auth import service as auth_service
from app.auth.principal import Principal
from app.errors import DomainError, Unauthenticated
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster.resolve import default_zone
from app.routers.deps import ClockDep, SessionDep
from app.web import session as web_session

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
    if found is None:
        raise LoginRequired(request.url.path)
    try:
        principal = auth_service.person_principal(session, found.person_id)
    except Unauthenticated as exc:
        raise LoginRequired(request.url.path) from exc
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
    """A summary and field → message for showing a refusal next to the form fields."""
    if isinstance(exc, ValidationError):
        fields: dict[str, str] = {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "form"
            fields.setdefault(field, str(err.get("msg", "invalid")).removeprefix("Value error, "))
        return "请检查标红的字段", fields
    return exc.message, {f.field: f.message for f in exc.fields}


def status_of(exc: DomainError | ValidationError) -> int:
    return exc.status if isinstance(exc, DomainError) else 422


def install(app: FastAPI) -> None:
    """Static files and the two console-specific answers: to the sign-in page, and 403 for a missing CSRF token."""
    app.mount("/console/static", StaticFiles(directory=str(WEB_DIR / "static")), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/console/login?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return render(
            request,
            "error.html",
            {"title": "请求被拒绝", "message": "表单已过期或缺少安全校验(CSRF),请刷新页面后重试。"},
            status_code=403,
        )
