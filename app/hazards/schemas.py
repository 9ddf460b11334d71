"""API shapes of the hazard register (PRODUCT.md §10)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.hazards.models import Level, Phase, Source, Status
from app.org.schemas import MobilePhone, UnitCode

Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(max_length=1000)]
Money = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]

# The fields of a hazard as reported: also the columns of an imported or exported problem list.
CREATE_FIELDS = (
    "unit_code",
    "venue",
    "venue_category",
    "address",
    "description",
    "level",
    "basis",
    "found_at",
    "source",
    "responsible_org",
    "responsible_person",
    "responsible_phone",
    "deadline",
    "measures",
)


class HazardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit_code: UnitCode = Field(description="the street/township or district the hazard belongs to (属地)")
    venue: Text200 = Field(description="the place, e.g. the hospital's name")
    venue_category: Annotated[str, Field(min_length=1, max_length=32)] = Field(
        description="one of the configured categories (GET /api/v1/hazards/categories)"
    )
    address: Annotated[str, Field(max_length=300)] = ""
    description: Annotated[str, Field(max_length=5000)] = ""
    level: Level = Field(description="general (一般) or major (重大)")
    basis: Annotated[str, Field(max_length=1000)] = Field(
        default="", description="判定依据; required for a major hazard"
    )
    found_at: AwareDatetime
    source: Source
    responsible_org: Text200
    responsible_person: Annotated[str, Field(min_length=1, max_length=100)]
    responsible_phone: MobilePhone
    deadline: date = Field(description="the rectification deadline, a local date (YYYY-MM-DD)")
    measures: Annotated[str, Field(max_length=2000)] = ""


class PlanCreate(BaseModel):
    """The rectification plan (整改方案): what will be done, with what money, by whom, by when."""

    model_config = ConfigDict(extra="forbid")

    measures: Annotated[str, Field(min_length=1, max_length=2000)]
    funds_cny: Money | None = None
    person: Annotated[str, Field(min_length=1, max_length=100)]
    deadline: date | None = Field(
        default=None, description="no later than the current deadline (a later one is an extension)"
    )


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note = ""


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: bool
    note: Note = ""


class ExtensionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: date
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class ListingRequest(BaseModel):
    """挂牌督办: list a major hazard for supervision at the district or the city."""

    model_config = ConfigDict(extra="forbid")

    tier: Literal["district", "city"]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class PlanPublic(BaseModel):
    measures: str
    funds_cny: float | None
    person: str


class PhotoPublic(BaseModel):
    id: int
    phase: Phase
    url: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    uploaded_by: str
    uploaded_at: datetime


class TimelineItem(BaseModel):
    at: datetime
    kind: str
    actor: str
    message: str
    data: dict[str, object] | None = None


class HazardPublic(BaseModel):
    id: int
    code: str
    unit_code: str
    unit_name: str
    venue: str
    venue_category: str
    venue_category_name: str
    address: str
    description: str
    level: Level
    basis: str
    found_at: datetime
    source: Source
    responsible_org: str
    responsible_person: str
    responsible_phone: str
    deadline: date
    measures: str
    status: Status
    overdue: bool = Field(description="past its deadline and not yet submitted for verification")
    days_overdue: int
    plan: PlanPublic | None
    listed_tier: str | None
    listed_unit_code: str | None
    listed_at: datetime | None
    failed_verifications: int
    reported_by: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    closed_at: datetime | None


class HazardDetail(HazardPublic):
    timeline: list[TimelineItem]
    photos: list[PhotoPublic]
    actions: list[str] = Field(description="what the caller may do now (plan, submit, verify, extension, listing…)")


class CategoryPublic(BaseModel):
    code: str
    name: str


class ImportResult(BaseModel):
    rows: int
    created: int
    unchanged: int = Field(description="rows naming the code of a hazard already in the register (an export)")
    codes: list[str]


class StatsRow(BaseModel):
    unit_code: str
    unit_name: str
    found: int
    closed: int
    closure_rate: float | None = Field(description="closed / found, or null when nothing was found")
    overdue: int
    major: int
    listed: int


class HazardStats(BaseModel):
    unit_code: str
    unit_name: str
    from_: date | None = Field(alias="from")
    to: date | None
    rows: list[StatsRow]
    total: StatsRow

    model_config = ConfigDict(populate_by_name=True)
