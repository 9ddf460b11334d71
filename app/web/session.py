"""The console's session cookie and CSRF tokens.

The session is a signed cookie (itsdangerous, keyed by the instance secret that also signs bearer tokens), so
any replica can verify it without a lookup. It carries the person id, an expiry checked against the injected clock
and a random CSRF token; every form post must echo that token (compared in constant time). Before sign-in, a
signed `dl_login` cookie carries the token for the sign-in form (double submit), so a third-party page cannot sign
a visitor in as someone else.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from app.clock import Clock

SESSION_COOKIE = "dl_session"
LOGIN_COOKIE = "dl_login"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
# A duty shift is at most 24 h; people sign in again at the start of the next one.
SESSION_TTL = timedelta(hours=12)
LOGIN_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class ConsoleSession:
    person_id: int
    csrf: str
    expires_at: datetime


def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"dutyline-console-{purpose}")


def new_session(person_id: int, *, secret: str, clock: Clock) -> tuple[str, ConsoleSession]:
    """A fresh session (a new CSRF token at every sign-in) and its cookie value."""
    expires = clock.now() + SESSION_TTL
    data = ConsoleSession(person_id=person_id, csrf=secrets.token_urlsafe(32), expires_at=expires)
    value = _serializer(secret, "session").dumps({"p": person_id, "c": data.csrf, "e": int(expires.timestamp())})
    return value, data


def read_session(value: str | None, *, secret: str, clock: Clock) -> ConsoleSession | None:
    """The session a cookie carries, or None when it is missing, tampered with or expired."""
    if not value:
        return None
    try:
        raw = _serializer(secret, "session").loads(value)
        person_id, csrf, expires = int(raw["p"]), str(raw["c"]), int(raw["e"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if expires <= clock.now().timestamp():
        return None
    return ConsoleSession(person_id=person_id, csrf=csrf, expires_at=datetime.fromtimestamp(expires, UTC))


def new_login_token(*, secret: str, clock: Clock) -> tuple[str, str]:
    """(cookie value, form token) for the sign-in form."""
    token = secrets.token_urlsafe(32)
    expires = int((clock.now() + LOGIN_TTL).timestamp())
    return _serializer(secret, "login").dumps({"c": token, "e": expires}), token


def read_login_token(value: str | None, *, secret: str, clock: Clock) -> str | None:
    if not value:
        return None
    try:
        raw = _serializer(secret, "login").loads(value)
        token, expires = str(raw["c"]), int(raw["e"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    return token if expires > clock.now().timestamp() else None


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
