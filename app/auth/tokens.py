"""Short-lived bearer tokens (JWT, HS256) for signed-in people."""

from __future__ import annotations

import secrets
from datetime import timedelta

import jwt
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.auth.models import InstanceSecret
from app.clock import Clock
from app.errors import Unauthenticated

ALGORITHM = "HS256"


def issue(person_id: int, *, key: str, clock: Clock, ttl_seconds: int) -> str:
    now = clock.now()
    claims = {
        "sub": str(person_id),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def person_id_from(token: str, *, key: str, clock: Clock) -> int:
    """The person a token names; expiry is checked against the injected clock, not the wall clock."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], options={"verify_exp": False, "require": ["sub", "exp"]}
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid bearer token") from exc
    if claims.get("typ") != "access" or int(claims["exp"]) <= clock.now().timestamp():
        raise Unauthenticated("bearer token expired")
    try:
        return int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthenticated("invalid bearer token") from exc


def instance_secret(session: Session, name: str, *, clock: Clock) -> str:
    """A secret made on first use and kept in the database, so every replica signs with the same key."""
    row = session.get(InstanceSecret, name)
    if row is not None:
        return row.value
    try:
        with session.begin_nested():
            session.add(InstanceSecret(name=name, value=secrets.token_urlsafe(48), created_at=clock.now()))
    except IntegrityError:
        pass  # another replica made it first; use theirs
    row = session.get(InstanceSecret, name)
    assert row is not None
    return row.value
