"""Sign-in with throttling, and the principal behind a bearer token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from app.auth import passwords
from app.auth.models import LoginFailure
from app.auth.principal import Principal, permissions_for_roles
from app.clock import Clock
from app.errors import TooManyRequests, Unauthenticated
from app.org.models import Person, Unit

# One address may fail for many usernames before it is throttled as a whole (an office behind one NAT).
IP_FAILURE_FACTOR = 4


def sign_in(
    session: Session,
    *,
    clock: Clock,
    username: str,
    password: str,
    client_ip: str,
    max_failures: int,
    window_seconds: int,
) -> Person | None:
    """The person for these credentials, or None (the failure is recorded for throttling).

    Raises TooManyRequests while the username or the address is throttled, before looking at the
    password, so a throttled guesser learns nothing.
    """
    now = clock.now()
    since = now - timedelta(seconds=window_seconds)
    session.execute(delete(LoginFailure).where(col(LoginFailure.at) < since))
    by_user, by_ip = session.exec(
        select(
            func.count().filter(col(LoginFailure.username) == username, col(LoginFailure.cleared_at).is_(None)),
            func.count().filter(col(LoginFailure.client_ip) == client_ip),
        ).where(
            col(LoginFailure.at) >= since,
            or_(col(LoginFailure.username) == username, col(LoginFailure.client_ip) == client_ip),
        )
    ).one()
    if by_user >= max_failures or by_ip >= max_failures * IP_FAILURE_FACTOR:
        raise TooManyRequests("too many failed sign-ins; try again later", retry_after=window_seconds)
    person = session.exec(select(Person).where(Person.username == username)).first()
    hashed = person.password_hash if person is not None and person.active else None
    if passwords.verify_password(password, hashed) and person is not None:
        session.execute(delete(LoginFailure).where(col(LoginFailure.username) == username))
        return person
    session.add(LoginFailure(username=username[:64], client_ip=client_ip[:64], at=now))
    session.flush()
    return None


def clear_failures(session: Session, *, clock: Clock, username: str) -> int:
    """Unlock a username: its failures stop counting for it (they still count for the addresses they came from,
    so a guesser is not let off). Returns how many failures were cleared."""
    result = session.execute(
        update(LoginFailure)
        .where(col(LoginFailure.username) == username, col(LoginFailure.cleared_at).is_(None))
        .values(cleared_at=clock.now())
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def person_principal(session: Session, person_id: int) -> Principal:
    """The principal of an active person, scoped to their home unit's subtree."""
    row = session.exec(
        select(Person, Unit).join(Unit, Unit.id == Person.unit_id).where(Person.id == person_id)  # type: ignore[arg-type]
    ).first()
    if row is None or not row[0].active:
        raise Unauthenticated("the account is unknown or deactivated")
    person, unit = row
    return principal_of(person, unit)


def principal_of(person: Person, unit: Unit) -> Principal:
    return Principal(
        kind="person",
        id=person.id,
        label=f"person:{person.id}:{person.username or person.name}",
        permissions=permissions_for_roles(person.roles),
        unit_id=unit.id,
        unit_code=unit.code,
        unit_path=unit.path,
        roles=frozenset(person.roles),
    )
