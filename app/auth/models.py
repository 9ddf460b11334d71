from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, String
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class ApiKey(SQLModel, table=True):
    """An agency system's key. Only its SHA-256 digest and a short public prefix are stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    prefix: str = Field(sa_column=Column(String(16), unique=True, nullable=False))
    digest: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginFailure(SQLModel, table=True):
    """Failed sign-ins, kept for the throttle window; in the database so every replica sees them."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, index=True)
    client_ip: str = Field(max_length=64, index=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    # Set when an admin unlocks the username: the row no longer counts for it, but still for the address.
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InstanceSecret(SQLModel, table=True):
    """Secrets generated on first run (when not given by the environment), shared by all replicas."""

    __tablename__ = "instance_secret"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime)
