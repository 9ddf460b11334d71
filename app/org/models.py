from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, String, text
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class Tier(StrEnum):
    city = "city"
    district = "district"
    street = "street"


# The tiers from the bottom up (the order an incident climbs) and each tier's depth in the tree (the city is 0).
TIER_ORDER: tuple[Tier, ...] = (Tier.street, Tier.district, Tier.city)
TIER_DEPTH: dict[str, int] = {Tier.city: 0, Tier.district: 1, Tier.street: 2}


def tier_above(tier: str) -> Tier | None:
    """The next tier up (None above the city)."""
    index = TIER_ORDER.index(Tier(tier))
    return TIER_ORDER[index + 1] if index + 1 < len(TIER_ORDER) else None


class Role(StrEnum):
    admin = "admin"
    unit_admin = "unit_admin"
    duty_officer = "duty_officer"
    leader = "leader"
    viewer = "viewer"
    inspector = "inspector"  # reports hazards (隐患排查) within their unit's subtree


class AgencyKind(StrEnum):
    police = "police"
    fire = "fire"
    ambulance = "ambulance"
    gas = "gas"
    health = "health"
    traffic = "traffic"
    other = "other"


class Unit(SQLModel, table=True):
    """One node of the division tree. `path` is the chain of codes from the root ("110000/110106/110106001"),
    so "is X inside Y's subtree" is a prefix test and a subtree is one indexed LIKE."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(12), unique=True, nullable=False))
    name: str = Field(max_length=100)
    tier: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    path: str = Field(sa_column=Column(String(200), nullable=False, index=True))
    timezone: str | None = Field(default=None, max_length=64)


class Agency(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(40), unique=True, nullable=False))
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Person(SQLModel, table=True):
    # Two active people with one mobile number would make an SMS reply ambiguous (whose "1" is it?).
    __table_args__ = (
        Index(
            "uq_person_active_phone",
            "phone",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    phone: str = Field(max_length=20, index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    username: str | None = Field(default=None, sa_column=Column(String(64), unique=True, nullable=True))
    password_hash: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
