"""People: duty officers, leaders, administrators. Deactivated, never deleted (the record keeps them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app import audit
from app.auth import passwords
from app.auth import service as auth_service
from app.auth.principal import Principal, authorize, authorize_role_grant
from app.clock import Clock
from app.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.org.schemas import PersonCreate, PersonPublic, PersonUpdate
from app.schemas import MAX_ID


def public(person: Person, unit: Unit) -> PersonPublic:
    assert person.id is not None
    return PersonPublic(
        id=person.id,
        name=person.name,
        phone=person.phone,
        unit_code=unit.code,
        unit_name=unit.name,
        roles=list(person.roles),
        username=person.username,
        active=person.active,
        created_at=person.created_at,
        updated_at=person.updated_at,
    )


def _snapshot(person: Person, unit: Unit) -> dict[str, Any]:
    return public(person, unit).model_dump(mode="json", exclude={"created_at", "updated_at"})


def _checked_password(password: str | None) -> str | None:
    if password is None:
        return None
    problem = passwords.password_problem(password)
    if problem:
        raise Invalid.field("password", problem)
    return passwords.hash_password(password)


def _phone_free(session: Session, phone: str, *, other_than: int | None = None) -> None:
    """No second active person with this mobile number: replies are matched to people by their number."""
    query = select(Person.id, Person.name).where(Person.phone == phone, col(Person.active).is_(True))
    if other_than is not None:
        query = query.where(Person.id != other_than)
    holder = session.exec(query).first()
    if holder is not None:
        raise Conflict(
            f"phone {phone} belongs to an active person already (id {holder[0]})",
            fields=[FieldError("phone", f"already the mobile number of active person {holder[0]}")],
        )


def _username_free(session: Session, username: str | None) -> None:
    if username and session.exec(select(Person.id).where(Person.username == username)).first() is not None:
        raise Conflict(f"the username {username!r} is taken")


def create(session: Session, *, clock: Clock, actor: Principal, data: PersonCreate) -> tuple[Person, Unit]:
    """Add a person to a unit within the actor's scope."""
    unit = unit_service.get(session, data.unit_code, field="unit_code")
    authorize(actor, "people:write", unit)
    authorize_role_grant(actor, data.roles)
    if data.password is not None and data.username is None:
        raise Invalid.field("username", "a password needs a username to sign in with")
    _username_free(session, data.username)
    _phone_free(session, data.phone)
    now = clock.now()
    assert unit.id is not None
    person = Person(
        name=data.name.strip(),
        phone=data.phone,
        unit_id=unit.id,
        roles=[str(r) for r in data.roles],
        username=data.username,
        password_hash=_checked_password(data.password),
        active=True,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():  # a savepoint: on a conflict the request's transaction stays usable
            session.add(person)
    except IntegrityError as exc:  # a concurrent create took the username or phone between check and insert
        _phone_free(session, data.phone)
        raise Conflict(f"the username {data.username!r} is taken") from exc
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="person.create",
        object_type="person",
        object_id=person.id,
        unit_path=unit.path,
        after=_snapshot(person, unit),
    )
    return person, unit


def get(session: Session, *, actor: Principal, person_id: int) -> tuple[Person, Unit]:
    row = session.exec(
        select(Person, Unit).join(Unit, col(Unit.id) == col(Person.unit_id)).where(Person.id == person_id)
    ).first()
    if row is None or not actor.covers(row[1]):
        # Outside one's scope looks the same as absent: ids are not to be probed.
        raise NotFound(f"no person with id {person_id}")
    authorize(actor, "people:read", row[1])
    return row[0], row[1]


def update(
    session: Session, *, clock: Clock, actor: Principal, person_id: int, data: PersonUpdate
) -> tuple[Person, Unit]:
    """Change a person within the actor's scope (and the new unit's, when moving them)."""
    person, unit = get(session, actor=actor, person_id=person_id)
    authorize(actor, "people:write", unit)
    if actor.kind != "system" and actor.id == person.id and (data.roles is not None or data.active is False):
        raise Forbidden("you may not change your own roles or deactivate yourself")
    authorize_role_grant(actor, person.roles)  # nobody edits someone who outranks them
    before = _snapshot(person, unit)
    changes = data.model_dump(exclude_unset=True)
    phone, active = changes.get("phone", person.phone), changes.get("active", person.active)
    if active and (phone != person.phone or not person.active):  # a new number, or back from deactivation
        _phone_free(session, phone, other_than=person.id)  # before any change is made (and autoflushed)
    if "unit_code" in changes:
        unit = unit_service.get(session, changes.pop("unit_code"), field="unit_code")
        authorize(actor, "people:write", unit)
        assert unit.id is not None
        person.unit_id = unit.id
    if "roles" in changes:
        roles = [str(r) for r in changes.pop("roles")]
        authorize_role_grant(actor, roles)
        person.roles = roles
    if "password" in changes:
        if person.username is None:
            raise Invalid.field("password", "this person has no username to sign in with")
        person.password_hash = _checked_password(changes.pop("password"))
    for key in ("name", "phone", "active"):
        if key in changes:
            setattr(person, key, changes[key].strip() if key == "name" else changes[key])
    after = _snapshot(person, unit)
    password_changed = data.password is not None
    if after == before and not password_changed:
        return person, unit
    person.updated_at = clock.now()
    try:
        with session.begin_nested():
            session.add(person)
    except IntegrityError as exc:  # a concurrent change took the number between check and write
        raise Conflict(
            "phone: already the mobile number of an active person", fields=[FieldError("phone", "taken")]
        ) from exc
    action = "person.deactivate" if before["active"] and not after["active"] else "person.update"
    if password_changed:
        after = {**after, "password": "changed"}
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action=action,
        object_type="person",
        object_id=person.id,
        unit_path=unit.path,
        before=before,
        after=after,
    )
    return person, unit


def listing(
    session: Session,
    *,
    actor: Principal,
    unit: Unit | None,
    role: str | None,
    active: bool | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Person, Unit]], int]:
    """People in a unit's subtree (default: the actor's scope), filtered, with the total count."""
    root = unit.path if unit is not None else actor.unit_path
    if unit is not None:
        authorize(actor, "people:read", unit)
    else:
        authorize(actor, "people:read")
    query = select(Person, Unit).join(Unit, col(Unit.id) == col(Person.unit_id))
    if root is not None:
        query = query.where(unit_service.in_subtree(root))
    if active is not None:
        query = query.where(Person.active == active)
    if q:
        like = f"%{q}%"
        query = query.where(
            col(Person.name).like(like) | col(Person.username).like(like) | col(Person.phone).like(like)
        )
    if role:
        # Roles are a small JSON list; matching its text keeps one query on SQLite and PostgreSQL.
        query = query.where(cast(Person.roles, String).like(f'%"{role}"%'))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Unit.path), col(Person.id)).offset(offset).limit(limit)).all()
    return [(p, u) for p, u in rows], total


def unlock(session: Session, *, clock: Clock, actor: Principal, person_id: int) -> int:
    """Lift the sign-in throttle on a person's username (an admin's way out of a lockout); the count cleared."""
    person, unit = get(session, actor=actor, person_id=person_id)
    authorize(actor, "people:write", unit)
    if person.username is None:
        raise Invalid.field("person_id", "this person has no username to sign in with")
    cleared = auth_service.clear_failures(session, clock=clock, username=person.username)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="person.unlock",
        object_type="person",
        object_id=person.id,
        unit_path=unit.path,
        after={"username": person.username, "failures_cleared": cleared},
    )
    return cleared


def find(session: Session, ref: str) -> Person:
    """A person by username, E.164 phone or id (for the CLI and roster imports)."""
    query = select(Person).where((Person.username == ref) | (Person.phone == ref))
    person = session.exec(query).first()
    if person is None and ref.isdigit() and 1 <= int(ref) <= MAX_ID:
        person = session.get(Person, int(ref))
    if person is None:
        raise NotFound(f"no person {ref!r}")
    return person
