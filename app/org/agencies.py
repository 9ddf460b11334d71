"""Agencies: the 110/119/120 and other systems that post incidents with their own API keys."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app import audit
from app.auth import api_keys
from app.auth.principal import Principal, authorize, authorize_whole_tree
from app.clock import Clock
from app.errors import Conflict, NotFound
from app.org import units as unit_service
from app.org.models import Agency, Unit
from app.org.schemas import AgencyCreate, AgencyPublic


def _authorize_agency(actor: Principal, unit: Unit | None) -> None:
    # An agency without a unit covers the whole tree, so only a principal over the whole tree manages it.
    if unit is None:
        authorize_whole_tree(actor, "agencies:write")
    else:
        authorize(actor, "agencies:write", unit)


def public(agency: Agency, unit: Unit | None) -> AgencyPublic:
    assert agency.id is not None
    return AgencyPublic(
        id=agency.id,
        code=agency.code,
        name=agency.name,
        kind=agency.kind,
        unit_code=unit.code if unit else None,
        active=agency.active,
        created_at=agency.created_at,
    )


def create(session: Session, *, clock: Clock, actor: Principal, data: AgencyCreate) -> tuple[Agency, Unit | None]:
    """Register an agency, optionally scoped to a unit's subtree."""
    unit = unit_service.get(session, data.unit_code, field="unit_code") if data.unit_code else None
    _authorize_agency(actor, unit)
    if session.exec(select(Agency.id).where(Agency.code == data.code)).first() is not None:
        raise Conflict(f"the agency code {data.code!r} is taken")
    agency = Agency(
        code=data.code, name=data.name, kind=data.kind, unit_id=unit.id if unit else None, created_at=clock.now()
    )
    session.add(agency)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="agency.create",
        object_type="agency",
        object_id=agency.code,
        unit_path=unit.path if unit else None,
        after=public(agency, unit).model_dump(mode="json"),
    )
    return agency, unit


def get(session: Session, code: str) -> tuple[Agency, Unit | None]:
    agency = session.exec(select(Agency).where(Agency.code == code)).first()
    if agency is None:
        raise NotFound(f"no agency {code!r}")
    unit = session.get(Unit, agency.unit_id) if agency.unit_id else None
    return agency, unit


def listing(session: Session) -> list[tuple[Agency, Unit | None]]:
    agencies = session.exec(select(Agency).order_by(col(Agency.code))).all()
    units = unit_service.codes_by_id(session, {a.unit_id for a in agencies if a.unit_id})
    return [(a, units.get(a.unit_id) if a.unit_id else None) for a in agencies]


def create_key(
    session: Session, *, clock: Clock, actor: Principal, code: str, scopes: list[str]
) -> tuple[api_keys.NewKey, Agency]:
    """A new API key for an agency in the actor's scope; the plain key is only in the return value."""
    agency, unit = get(session, code)
    _authorize_agency(actor, unit)
    new = api_keys.create(session, clock=clock, agency=agency, scopes=scopes)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="api_key.create",
        object_type="api_key",
        object_id=new.record.prefix,
        unit_path=unit.path if unit else None,
        after={"agency": agency.code, "prefix": new.record.prefix, "scopes": new.record.scopes},
    )
    return new, agency


def revoke_key(session: Session, *, clock: Clock, actor: Principal, prefix: str) -> None:
    """Revoke an API key of an agency in the actor's scope (revoking twice is harmless)."""
    record = api_keys.find(session, prefix)
    agency = session.get(Agency, record.agency_id)
    unit = session.get(Unit, agency.unit_id) if agency is not None and agency.unit_id else None
    _authorize_agency(actor, unit)
    if record.revoked_at is None:
        api_keys.revoke(session, clock=clock, record=record)
        audit.record(
            session,
            clock=clock,
            actor=actor,
            action="api_key.revoke",
            object_type="api_key",
            object_id=prefix,
            unit_path=unit.path if unit else None,
            after={"revoked": True},
        )
