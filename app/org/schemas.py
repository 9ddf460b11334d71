from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.org.models import AgencyKind, Role, Tier
from app.org.phones import normalize_mobile

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")


def _username(value: str | None) -> str | None:
    if value is not None and not USERNAME_RE.match(value):
        raise ValueError("2 to 64 characters: letters, digits, '_', '.', '@' or '-'")
    return value


def _roles(value: list[Role]) -> list[Role]:
    if len(set(value)) != len(value):
        raise ValueError("a role is listed twice")
    return sorted(value)


MobilePhone = Annotated[str, AfterValidator(normalize_mobile)]
Username = Annotated[str | None, AfterValidator(_username)]
Roles = Annotated[list[Role], AfterValidator(_roles)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
UnitCode = Annotated[str, Field(pattern=r"^\d{6,12}$", description="official division code")]


class UnitPublic(BaseModel):
    code: str
    name: str
    tier: Tier
    parent_code: str | None


class UnitDetail(UnitPublic):
    chain: list[UnitPublic] = Field(description="from the city down to this unit's parent")
    children_count: int


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    phone: MobilePhone
    unit_code: UnitCode
    roles: Roles = Field(min_length=1)
    username: Username = None
    password: str | None = Field(default=None, max_length=256)


class PersonUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    phone: MobilePhone | None = None
    unit_code: UnitCode | None = None
    roles: Roles | None = Field(default=None, min_length=1)
    password: str | None = Field(default=None, max_length=256)
    active: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_nulls(cls, value: object) -> object:
        # Omit a field to leave it unchanged; null would mean "clear", which no field here allows.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class PersonPublic(BaseModel):
    id: int
    name: str
    phone: str
    unit_code: str
    unit_name: str
    roles: list[str]
    username: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class Me(PersonPublic):
    permissions: list[str]


class AgencyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{2,40}$")]
    name: Name
    kind: AgencyKind
    unit_code: UnitCode | None = None


class AgencyPublic(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    unit_code: str | None
    active: bool
    created_at: datetime
