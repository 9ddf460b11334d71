from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app.auth import service as auth_service
from app.auth import tokens
from app.db import transaction
from app.errors import Unauthenticated
from app.org import people as people_service
from app.org.schemas import Me
from app.routers.deps import ClockDep, PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/auth/token", summary="Sign in with the OAuth2 password form; returns a short-lived bearer JWT")
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    clock: ClockDep,
    settings: SettingsDep,
) -> Token:
    client_ip = request.client.host if request.client else "unknown"
    # Its own transaction: a failed attempt must be recorded even though the answer is a 401.
    with transaction(request.app.state.engine) as session:
        person = auth_service.sign_in(
            session,
            clock=clock,
            username=form.username,
            password=form.password,
            client_ip=client_ip,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_window_seconds,
        )
    if person is None or person.id is None:
        raise Unauthenticated("wrong username or password")
    access = tokens.issue(
        person.id, key=request.app.state.secret_key, clock=clock, ttl_seconds=settings.token_ttl_seconds
    )
    return Token(access_token=access, expires_in=settings.token_ttl_seconds)


@router.get("/me", summary="The signed-in person, with what they may do")
def me(session: SessionDep, principal: PrincipalDep) -> Me:
    if principal.kind != "person" or principal.id is None:
        raise Unauthenticated("/me is for signed-in people; API keys have no person")
    person, unit = people_service.get(session, actor=principal, person_id=principal.id)
    return Me(**people_service.public(person, unit).model_dump(), permissions=sorted(principal.permissions))
