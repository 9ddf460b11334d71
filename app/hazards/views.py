"""Hazards as the API shows them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from app.auth.principal import Principal
from app.hazards import categories, lifecycle, photos
from app.hazards import service as hazard_service
from app.hazards.models import Hazard, HazardPhoto, Level, Phase, Source, Status
from app.hazards.schemas import HazardDetail, HazardPublic, PhotoPublic, PlanPublic, TimelineItem
from app.org import units as unit_service
from app.org.models import Unit


def public(hazard: Hazard, units: dict[int, Unit], now: datetime) -> HazardPublic:
    assert hazard.id is not None
    unit = units[hazard.unit_id]
    overdue = hazard_service.is_overdue(hazard, now)
    listed = units.get(hazard.listed_unit_id) if hazard.listed_unit_id is not None else None
    plan = (
        PlanPublic(measures=hazard.plan_measures, funds_cny=hazard.plan_funds_cny, person=hazard.plan_person or "")
        if hazard.plan_measures is not None
        else None
    )
    return HazardPublic(
        id=hazard.id,
        code=hazard.code,
        unit_code=unit.code,
        unit_name=unit.name,
        venue=hazard.venue,
        venue_category=hazard.venue_category,
        venue_category_name=categories.name(hazard.venue_category),
        address=hazard.address,
        description=hazard.description,
        level=Level(hazard.level),
        basis=hazard.basis,
        found_at=hazard.found_at,
        source=Source(hazard.source),
        responsible_org=hazard.responsible_org,
        responsible_person=hazard.responsible_person,
        responsible_phone=hazard.responsible_phone,
        deadline=hazard.deadline,
        measures=hazard.measures,
        status=Status(hazard.status),
        overdue=overdue,
        days_overdue=(hazard_service.local_today(unit, now) - hazard.deadline).days if overdue else 0,
        plan=plan,
        listed_tier=hazard.listed_tier,
        listed_unit_code=listed.code if listed else None,
        listed_at=hazard.listed_at,
        failed_verifications=hazard.failed_verifications,
        reported_by=hazard.reported_by,
        created_at=hazard.created_at,
        updated_at=hazard.updated_at,
        submitted_at=hazard.submitted_at,
        closed_at=hazard.closed_at,
    )


def public_many(session: Session, hazards: Sequence[Hazard], now: datetime) -> list[HazardPublic]:
    units = hazard_service.units_of(session, hazards)
    return [public(h, units, now) for h in hazards]


def photo_public(photo: HazardPhoto) -> PhotoPublic:
    assert photo.id is not None
    return PhotoPublic(
        id=photo.id,
        phase=Phase(photo.phase),
        url=f"/api/v1/hazards/{photo.hazard_id}/photos/{photo.id}",
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        width=photo.width,
        height=photo.height,
        uploaded_by=photo.uploaded_by,
        uploaded_at=photo.uploaded_at,
    )


def detail(session: Session, *, actor: Principal, hazard: Hazard, now: datetime) -> HazardDetail:
    units = hazard_service.units_of(session, [hazard])
    unit = units[hazard.unit_id]
    chain = {u.tier: u for u in unit_service.chain(session, unit)}
    base = public(hazard, units, now)
    return HazardDetail(
        **base.model_dump(),
        timeline=[
            TimelineItem(at=e.at, kind=e.kind, actor=e.actor, message=e.message, data=e.data)
            for e in hazard_service.timeline(session, hazard)
        ],
        photos=[photo_public(p) for p in photos.of(session, hazard)],
        actions=lifecycle.actions(actor, hazard, unit, chain),
    )
