from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.notices.models import Kind, NoticeStatus, ReceiptState
from app.org.models import Tier
from app.org.schemas import UnitCode
from app.roster.schemas import PersonBrief

# 60 s … 24 h, as PRODUCT.md §9 bounds every answer window.
SignWindow = Annotated[int, Field(ge=60, le=86_400, description="seconds to sign, 60 … 86400")]
Text = Annotated[str, Field(min_length=1, max_length=5000)]


class Addressing(BaseModel):
    """Whom a notice goes to: the children or subtree of the issuer, narrowed to tiers, plus listed units."""

    model_config = ConfigDict(extra="forbid")

    scope: Annotated[str | None, Field(pattern=r"^(children|subtree)$")] = None
    tiers: Annotated[list[Tier], Field(max_length=3)] = []
    units: Annotated[list[UnitCode], Field(max_length=500)] = []

    @model_validator(mode="after")
    def _some(self) -> Addressing:
        if self.scope is None and not self.tiers and not self.units:
            raise ValueError("give a scope, tiers or units: the scope is empty")
        return self


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Kind.notice
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Text
    unit_code: UnitCode | None = Field(default=None, description="the issuing unit (default: your own)")
    to: Addressing
    sign_within_seconds: SignWindow = 1800
    feedback_due_at: AwareDatetime | None = None
    incident_id: Annotated[int | None, Field(ge=1, le=2_147_483_647)] = None


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = Field(default=None, description="the receiving unit (default: your own)")


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    unit_code: UnitCode | None = None


class ForwardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode | None = Field(default=None, description="the forwarding (receiving) unit: default your own")
    to: Addressing = Addressing(scope="children")


class InstructionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text
    sign_within_seconds: SignWindow = 1800
    feedback_due_at: AwareDatetime | None = None


class ReceiptPublic(BaseModel):
    id: int
    unit_code: str
    unit_name: str
    tier: str
    parent_unit_code: str | None = Field(description="the unit that forwarded it here (None: sent by the issuer)")
    state: ReceiptState
    due_at: datetime
    signed_at: datetime | None
    signed_by: PersonBrief | None
    signed_via: str | None
    feedback_at: datetime | None
    feedback: str | None
    feedback_late: bool
    forwarded: bool


class NoticeSummary(BaseModel):
    units: int
    signed: int
    pending: int
    overdue: int
    fed_back: int
    late_feedback: int


class NoticePublic(BaseModel):
    id: int
    code: str
    kind: Kind
    title: str
    body: str
    unit_code: str
    unit_name: str
    to: Addressing
    sign_within_seconds: int
    feedback_due_at: datetime | None
    incident_id: int | None
    color: str | None
    status: NoticeStatus
    version: int
    issued_by: str
    created_at: datetime
    updated_at: datetime
    summary: NoticeSummary


class NoticeDetail(NoticePublic):
    receipts: list[ReceiptPublic]
