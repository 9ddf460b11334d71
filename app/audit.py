"""Append-only audit log: who did what to which object, with the state before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, Session, SQLModel, col, func, select

from app.auth.principal import Principal
from app.clock import Clock
from app.db import UTCDateTime
from app.org import paths


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=120)
    actor_kind: str = Field(max_length=16)
    action: str = Field(max_length=60, index=True)
    object_type: str = Field(max_length=40, index=True)
    object_id: str = Field(max_length=64, index=True)
    # The unit the object belongs to, so an admin sees the entries of their own subtree.
    unit_path: str | None = Field(default=None, sa_column=Column(String(200), nullable=True, index=True))
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


def record(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    action: str,
    object_type: str,
    object_id: object,
    unit_path: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction: it commits with the change or not at all."""
    entry = AuditEntry(
        at=clock.now(),
        actor=actor.actor,
        actor_kind=actor.kind,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        unit_path=unit_path,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def entries(
    session: Session,
    *,
    within_path: str | None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Entries newest first, limited to a subtree (None: all), with the total count."""
    query = select(AuditEntry)
    # A root-level principal (a city) sees everything, including entries tied to no unit.
    if within_path is not None and "/" in within_path:
        query = query.where(paths.sql_within(col(AuditEntry.unit_path), within_path))
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    if action:
        query = query.where(AuditEntry.action == action)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)).all()
    return list(rows), total
