"""Who may use the built-in simulator's phone side (inbox, replies, keypresses, stats, reset, config): an admin,
signed in with a bearer token or the console's session cookie (a cookie-borne write must echo its CSRF token)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request

from app.auth import service as auth_service
from app.auth import tokens
from app.db import reader, transaction
from app.errors import Unauthenticated
from app.org.models import Role
from app.web import session as web_session

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def admin_guard(outer: FastAPI) -> Callable[[Request], None]:
    """A dependency for the simulator mounted in `outer` (its engine, secret key and clock are read per request)."""

    def guard(request: Request) -> None:
        state = outer.state
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        person_id: int | None = None
        try:
            if scheme.lower() == "bearer" and credentials:
                person_id = tokens.person_id_from(credentials, key=state.secret_key, clock=state.clock)
            else:
                found = web_session.read_session(
                    request.cookies.get(web_session.SESSION_COOKIE), secret=state.secret_key, clock=state.clock
                )
                if found is not None:
                    if request.method not in SAFE_METHODS and not web_session.tokens_match(
                        found.csrf, request.headers.get(web_session.CSRF_HEADER)
                    ):
                        raise HTTPException(403, "a console write to the simulator must carry X-CSRF-Token")
                    person_id = found.person_id
            if person_id is None:
                raise Unauthenticated("the simulator needs an admin: sign in (Authorization: Bearer …)")
            with transaction(reader(state.engine)) as session:
                principal = auth_service.person_principal(session, person_id)
        except Unauthenticated as exc:
            raise HTTPException(401, exc.message, {"WWW-Authenticate": "Bearer"}) from exc
        if Role.admin not in principal.roles:
            raise HTTPException(403, f"{principal.actor} is not an admin; the simulator shows every page sent")

    return guard
