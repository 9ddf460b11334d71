"""Shared FastAPI dependencies: the request's transaction, the clock, settings, the acting principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth import api_keys, tokens
from app.auth import service as auth_service
from app.auth.principal import Principal
from app.clock import Clock
from app.config import Settings
from app.db import reader, transaction
from app.errors import Unauthenticated
from app.schemas import MAX_ID


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back when it raises."""
    engine: Engine = request.app.state.engine
    if request.method in ("GET", "HEAD", "OPTIONS"):
        engine = reader(engine)
    with transaction(engine) as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A read-only transaction on the read replica (DATABASE_READ_URL), or on the main database without one."""
    engine: Engine = getattr(request.app.state, "read_engine", None) or request.app.state.engine
    with transaction(reader(engine)) as session:
        yield session


# The two below are `async` only so that FastAPI runs them on the event loop: a plain `def` costs a hop to
# a worker thread and back, for an attribute read.
async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the commit happens before the response is sent, so a 201 means it is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="JWT from POST /api/v1/auth/token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an agency system's API key")


def get_principal(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    if key:
        return api_keys.authenticate(session, key)
    if bearer is not None and bearer.scheme.lower() == "bearer":
        person_id = tokens.person_id_from(bearer.credentials, key=request.app.state.secret_key, clock=clock)
        return auth_service.person_principal(session, person_id)
    raise Unauthenticated("sign in (Authorization: Bearer …) or send an X-API-Key")


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500, description="page size (at most 500)")] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


PagingDep = Annotated[Paging, Depends()]

# Row ids in paths: bounded, so an absurd number is a 422 and never reaches the database driver.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
