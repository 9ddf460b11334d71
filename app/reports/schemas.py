"""The accountability report as the API answers it. Every figure carries its one-sentence definition (the same
sentences as docs/reports.md), so two people compute it the same way."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

LEVELS = ("I", "II", "III", "IV")
TIERS = ("street", "district", "city")


class IncidentFigures(BaseModel):
    total: int = Field(description="Incidents reported (created) in the period whose place lies in the unit's subtree.")
    by_level: dict[str, int] = Field(
        description="The same incidents by their effective level now (I 特别重大 … IV 一般), every level listed."
    )
    first_report_late: int = Field(
        description="Of those incidents, how many missed the first report's deadline (首报迟报): the overdue chase "
        "marked it late on the timeline, or the first report was filed after its deadline."
    )
    follow_up_late: int = Field(
        description="Follow-up deadlines missed (续报迟报), summed over those incidents: per incident the greater of "
        "the late marks on follow-ups and the follow-up or final reports filed after their deadline."
    )


class TierFigures(BaseModel):
    required: int = Field(description="Incidents of the period on which this tier had to acknowledge.")
    acknowledged: int = Field(description="Of those, how many this tier acknowledged (签收), at any time.")
    timed: int = Field(description="Of the acknowledged, how many had been paged first (those the times are over).")
    ack_seconds_median: float | None = Field(
        description="Median seconds from the tier's first page (after it became required) to its acknowledgement, "
        "interpolated like PostgreSQL's percentile_cont and Excel's PERCENTILE.INC; null without any."
    )
    ack_seconds_p90: float | None = Field(description="The 90th percentile of the same seconds, interpolated alike.")
    passed_over: int | None = Field(
        description="Times this tier was passed over (越级): its own chain ran out (no acknowledgement from its duty "
        "officer and leader within the windows, or both posts vacant) and the tier above was told. Null for the city, "
        "which has no tier above."
    )


class RollCallFigures(BaseModel):
    posts: int = Field(
        description="Roll-call entries (查岗) of roll-calls started in the period, for posts in the subtree."
    )
    answered: int = Field(description="Of those posts, how many answered within the window.")
    missed: int = Field(description="Posts held by someone who did not answer within the window.")
    vacant: int = Field(description="Posts nobody held when the roll was called (roster gaps).")
    pending: int = Field(description="Posts still within their window when the report was made.")
    rate: float | None = Field(
        description="Answer rate: answered ÷ (posts − vacant), as a roll-call's own summary computes it; "
        "null without posts."
    )


class NoticeFigures(BaseModel):
    receipts: int = Field(
        description="Notice receipts (one per receiving unit) created in the period in the subtree, cancelled "
        "notices left out."
    )
    signed_in_time: int = Field(description="Receipts signed (签收) at or before their sign-off deadline.")
    signed_late: int = Field(description="Receipts signed after their sign-off deadline.")
    never_signed: int = Field(description="Receipts not signed whose deadline has passed.")
    pending: int = Field(description="Receipts not signed whose deadline has not passed yet.")
    feedback_late: int = Field(
        description="Receipts whose feedback (反馈) came after the notice's feedback deadline, or has not come and "
        "that deadline has passed."
    )


class HazardFigures(BaseModel):
    found: int = Field(description="Hazards (隐患) found in the period in the subtree.")
    closed: int = Field(description="Of those, how many are closed (销号) now.")
    overdue: int = Field(description="Of those, how many are open or being rectified and past their deadline now.")


class Figures(BaseModel):
    incidents: IncidentFigures
    tiers: dict[str, TierFigures] = Field(description="Per tier: street, district, city.")
    rollcall: RollCallFigures
    notices: NoticeFigures
    hazards: HazardFigures


class UnitFigures(Figures):
    unit_code: str
    unit_name: str
    own: bool = Field(description="True for the row of things placed at the unit itself (本级), not below it.")


class WeekFigures(Figures):
    week: int = Field(description="0 for the period's first 7 days, then 1, 2, …")
    start: date = Field(description="The week's first local date.")


class AccountabilityReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    unit_code: str
    unit_name: str
    tier: str
    timezone: str = Field(description="The unit's time zone: the period's dates are local dates there.")
    from_: date = Field(alias="from", description="The period's first local date (included).")
    to: date = Field(description="The local date the period ends (excluded).")
    generated_at: datetime
    rows: list[UnitFigures] = Field(
        description="One row per child unit (a street: its own row), plus a 本级 row for things placed at the unit "
        "itself when there are any."
    )
    total: UnitFigures = Field(
        description="The whole subtree, computed over all its rows (not summed from the rows: medians do not add)."
    )
    weeks: list[WeekFigures] = Field(description="The whole subtree week by week from the period's first date.")
