"""API keys for agency systems: long random secrets looked up by SHA-256 digest.

A slow password hash would cap intake at a few requests per second per core; a 256-bit random key
needs no stretching, so the digest is an index lookup followed by a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, select

from app.auth.models import ApiKey
from app.auth.principal import API_KEY_SCOPES, Principal
from app.clock import Clock
from app.errors import Invalid, NotFound, Unauthenticated
from app.org.models import Agency, Unit

KEY_PREFIX = "dlk"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: str
    record: ApiKey


def parse_scopes(raw: str | list[str]) -> list[str]:
    scopes = [s.strip() for s in (raw.split(",") if isinstance(raw, str) else raw) if s.strip()]
    if not scopes:
        raise Invalid.field("scopes", "at least one scope is required")
    unknown = sorted(set(scopes) - API_KEY_SCOPES)
    if unknown:
        raise Invalid.field("scopes", f"unknown scope(s) {', '.join(unknown)}; known: {sorted(API_KEY_SCOPES)}")
    return sorted(set(scopes))


def create(session: Session, *, clock: Clock, agency: Agency, scopes: list[str]) -> NewKey:
    """Make a key for an agency; the plain key exists only in the return value."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    assert agency.id is not None
    record = ApiKey(
        agency_id=agency.id,
        prefix=prefix,
        digest=digest(key),
        scopes=parse_scopes(scopes),
        created_at=clock.now(),
    )
    session.add(record)
    session.flush()
    return NewKey(key=key, record=record)


def find(session: Session, prefix: str) -> ApiKey:
    record = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if record is None:
        raise NotFound(f"no API key with prefix {prefix!r}")
    return record


def revoke(session: Session, *, clock: Clock, record: ApiKey) -> None:
    record.revoked_at = clock.now()
    session.add(record)
    session.flush()


# Built once: every request with an API key runs it. Columns, not whole rows: loading three ORM entities
# cost more than the query.
_BY_DIGEST = (
    select(  # type: ignore[call-overload]
        ApiKey.digest,
        ApiKey.revoked_at,
        ApiKey.scopes,
        Agency.id,
        Agency.code,
        Agency.name,
        Agency.active,
        Unit.id,
        Unit.code,
        Unit.path,
    )
    .join(Agency, Agency.id == ApiKey.agency_id)
    .outerjoin(Unit, Unit.id == Agency.unit_id)
    .where(ApiKey.digest == bindparam("digest"))
)


def authenticate(session: Session, key: str) -> Principal:
    """The agency principal an X-API-Key stands for; every failure is the same 401."""
    wanted = digest(key)
    row = session.exec(_BY_DIGEST, params={"digest": wanted}).first()
    if row is None or not hmac.compare_digest(row[0], wanted):
        raise Unauthenticated("invalid API key")
    _, revoked_at, scopes, agency_id, agency_code, agency_name, active, unit_id, unit_code, unit_path = row
    if revoked_at is not None or not active:
        raise Unauthenticated("invalid API key")
    return Principal(
        kind="agency",
        id=agency_id,
        label=f"agency:{agency_code}",
        permissions=frozenset(scopes),
        unit_id=unit_id,
        unit_code=unit_code,
        unit_path=unit_path,
        name=agency_name,
    )
