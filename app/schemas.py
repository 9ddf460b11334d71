"""API shapes shared by every resource: the error body and the page of a listing."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

# Row ids are PostgreSQL `integer`: every id the API takes (path, query or body) is bounded by this, so an absurd
# number is a 422 naming its field and never reaches the database driver ("integer out of range" is a 500).
MAX_ID = 2_147_483_647
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]


class FieldErrorOut(BaseModel):
    field: str = Field(description="dotted path of the offending field, e.g. `phone` or `casualties.deaths`")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. validation_error, not_found, forbidden")
    message: str
    detail: str = Field(description="the same as message (FastAPI's customary key)")
    errors: list[FieldErrorOut] = Field(default_factory=list)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
