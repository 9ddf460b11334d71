"""API shapes shared by every resource: the error body and the page of a listing."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


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
