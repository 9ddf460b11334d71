"""What happens to a hazard after it is reported: the rectification plan, submission, verification (销号 when it
passes, back to rectifying when it fails), extensions by the tier above, and listing for supervision (挂牌督办).

Each transition locks the hazard row, checks the state (409 naming the action and the state) and the actor's
authority (403 naming the action and the roles), then writes the change, its timeline entry and its audit row in
the caller's transaction, and re-plans the deadline chase.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session, select

from app import audit
from app.auth.principal import Principal
from app.clock import Clock
from app.errors import Invalid
from app.hazards import chase
from app.hazards import service as hazard_service
from app.hazards.errors import ACTION_NAMES, RoleRefused, StateRefused
from app.hazards.models import Hazard, HazardPhoto, Level, Phase, Status
from app.hazards.schemas import ExtensionRequest, ListingRequest, PlanCreate, SubmitRequest, VerifyRequest
from app.org import paths
from app.org import units as unit_service
from app.org.models import Role, Tier, Unit

VERIFIER_ROLES = frozenset({Role.leader, Role.unit_admin, Role.admin})
WRITER_ROLES = frozenset({"inspector", Role.unit_admin, Role.admin})


def _roles(actor: Principal) -> list[str]:
    return sorted(str(r) for r in actor.roles)


def _strictly_above(actor: Principal, unit: Unit) -> bool:
    """The actor's scope holds the unit and is wider than it: the tier above (or higher)."""
    if actor.unit_path is None:
        return True
    return paths.below(unit.path, actor.unit_path)


def _require_state(hazard: Hazard, action: str, allowed: tuple[Status, ...]) -> None:
    if hazard.status not in allowed:
        raise StateRefused(action=action, status=hazard.status, allowed=tuple(str(s) for s in allowed))


def _require_writer(actor: Principal, unit: Unit, action: str) -> None:
    if not actor.can("hazards:write"):
        raise RoleRefused(
            action=action,
            actor=actor.actor,
            roles=_roles(actor),
            needs="an inspector, unit admin or admin does this",
            zh="由排查员、单位管理员或管理员办理",
        )
    if not actor.covers(unit):
        raise RoleRefused(
            action=action,
            actor=actor.actor,
            roles=_roles(actor),
            needs=f"{unit.name} is outside your scope",
            zh=f"{unit.name}不在您的管辖范围内",
        )


def _require_verifier(actor: Principal, hazard: Hazard, unit: Unit, action: str) -> None:
    """Verification: the unit's leader or admin; for a major hazard the tier above's."""
    if not actor.can("hazards:verify"):
        raise RoleRefused(
            action=action,
            actor=actor.actor,
            roles=_roles(actor),
            needs="a leader, unit admin or admin verifies",
            zh="由带班领导、单位管理员或管理员验收",
        )
    if not actor.covers(unit):
        raise RoleRefused(
            action=action,
            actor=actor.actor,
            roles=_roles(actor),
            needs=f"{unit.name} is outside your scope",
            zh=f"{unit.name}不在您的管辖范围内",
        )
    if hazard.level == Level.major and not _strictly_above(actor, unit):
        raise RoleRefused(
            action=action,
            actor=actor.actor,
            roles=_roles(actor),
            needs=f"a major hazard is verified by the tier above {unit.name}",
            zh=f"重大隐患由{unit.name}的上一级验收",
        )


def _require_tier_above(actor: Principal, unit: Unit, action: str) -> None:
    if not actor.can("hazards:verify") or not actor.covers(unit) or not _strictly_above(actor, unit):
        raise RoleRefused(
            action=action,
            actor=actor.actor,
            roles=_roles(actor),
            needs=f"the tier above {unit.name} (a leader, unit admin or admin there) grants this",
            zh=f"由{unit.name}的上一级（带班领导或管理员）批准",
        )


def _changed(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    hazard: Hazard,
    unit: Unit,
    action: str,
    before: dict[str, Any],
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> Hazard:
    now = clock.now()
    hazard.updated_at = now
    session.add(hazard)
    hazard_service.note(session, hazard, at=now, kind=kind, actor=actor.actor, message=message, data=data)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action=f"hazard.{action}",
        object_type="hazard",
        object_id=hazard.id,
        unit_path=unit.path,
        before=before,
        after=hazard_service.snapshot(hazard),
    )
    chase.replan(session, clock=clock, hazard=hazard, unit=unit)
    session.flush()
    return hazard


def plan(session: Session, *, clock: Clock, actor: Principal, hazard_id: int, data: PlanCreate) -> Hazard:
    """The rectification plan (measures, funds, person, deadline): open → rectifying (or a revised plan)."""
    hazard, unit = hazard_service.lock(session, actor=actor, hazard_id=hazard_id)
    _require_writer(actor, unit, "plan")
    _require_state(hazard, "plan", (Status.open, Status.rectifying))
    if data.deadline is not None and data.deadline > hazard.deadline:
        raise StateRefused(
            action="plan",
            status=hazard.status,
            allowed=(),
            why=f"plan: the deadline {data.deadline} is after the current one ({hazard.deadline}); "
            "a later deadline is an extension, granted by the tier above",
            zh="整改方案的期限不能晚于当前整改期限；延期须由上一级批准",
        )
    if data.deadline is not None and data.deadline < hazard_service.local_today(unit, clock.now()):
        raise Invalid.field("deadline", f"{data.deadline} has already passed")
    before = hazard_service.snapshot(hazard)
    hazard.plan_measures = data.measures.strip()
    hazard.plan_funds_cny = data.funds_cny
    hazard.plan_person = data.person.strip()
    if data.deadline is not None and data.deadline != hazard.deadline:
        hazard.deadline = data.deadline
        hazard.due_at = hazard_service.due_instant(data.deadline, unit)
    revised = hazard.status == Status.rectifying
    hazard.status = Status.rectifying
    funds = f"，资金{data.funds_cny:g}元" if data.funds_cny is not None else ""
    return _changed(
        session,
        clock=clock,
        actor=actor,
        hazard=hazard,
        unit=unit,
        action="plan",
        before=before,
        kind="plan",
        message=f"{'修订' if revised else '制定'}整改方案：{hazard.plan_measures[:200]}"
        f"（责任人{hazard.plan_person}{funds}，期限{hazard.deadline.isoformat()}）",
        data={
            "measures": hazard.plan_measures,
            "funds_cny": data.funds_cny,
            "person": hazard.plan_person,
            "deadline": hazard.deadline.isoformat(),
        },
    )


def submit(session: Session, *, clock: Clock, actor: Principal, hazard_id: int, data: SubmitRequest) -> Hazard:
    """The rectification is done: rectifying → submitted, with at least one after photo as evidence."""
    hazard, unit = hazard_service.lock(session, actor=actor, hazard_id=hazard_id)
    _require_writer(actor, unit, "submit")
    _require_state(hazard, "submit", (Status.rectifying,))
    since = hazard.submitted_at
    after_photos = session.exec(
        select(HazardPhoto.id).where(HazardPhoto.hazard_id == hazard.id, HazardPhoto.phase == Phase.after)
    ).all()
    if not after_photos:
        raise StateRefused(
            action="submit",
            status=hazard.status,
            allowed=(),
            why="submit needs at least one after photo (POST /api/v1/hazards/{id}/photos, phase=after) as evidence",
            zh="提交整改前须上传至少一张整改后照片",
        )
    before = hazard_service.snapshot(hazard)
    hazard.status = Status.submitted
    hazard.submitted_at = clock.now()
    note = data.note.strip()
    return _changed(
        session,
        clock=clock,
        actor=actor,
        hazard=hazard,
        unit=unit,
        action="submit",
        before=before,
        kind="submitted",
        message="提交整改，申请验收" + (f"：{note}" if note else ""),
        data={"note": note, "after_photos": len(after_photos), "resubmitted": since is not None},
    )


def verify(session: Session, *, clock: Clock, actor: Principal, hazard_id: int, data: VerifyRequest) -> Hazard:
    """Verification: passed → closed (销号); failed → back to rectifying, the deadline chase resumes."""
    hazard, unit = hazard_service.lock(session, actor=actor, hazard_id=hazard_id)
    _require_verifier(actor, hazard, unit, "verify")
    _require_state(hazard, "verify", (Status.submitted,))
    if not data.passed and not data.note.strip():
        raise Invalid.field("note", "say what is still wrong when verification fails")
    before = hazard_service.snapshot(hazard)
    note = data.note.strip()
    if data.passed:
        hazard.status = Status.closed
        hazard.closed_at = clock.now()
        kind, message = "closed", "验收通过，销号" + (f"：{note}" if note else "")
    else:
        hazard.status = Status.rectifying
        hazard.failed_verifications += 1
        kind, message = "verify_failed", f"验收未通过，退回整改：{note}"
    return _changed(
        session,
        clock=clock,
        actor=actor,
        hazard=hazard,
        unit=unit,
        action="verify",
        before=before,
        kind=kind,
        message=message,
        data={"passed": data.passed, "note": note},
    )


def extend(session: Session, *, clock: Clock, actor: Principal, hazard_id: int, data: ExtensionRequest) -> Hazard:
    """An extension of the deadline, granted by the tier above (the chase is planned anew from it)."""
    hazard, unit = hazard_service.lock(session, actor=actor, hazard_id=hazard_id)
    _require_tier_above(actor, unit, "extension")
    _require_state(hazard, "extension", (Status.open, Status.rectifying, Status.submitted))
    if data.until <= hazard.deadline:
        raise Invalid.field("until", f"must be after the current deadline ({hazard.deadline})")
    before = hazard_service.snapshot(hazard)
    old: date = hazard.deadline
    hazard.deadline = data.until
    hazard.due_at = hazard_service.due_instant(data.until, unit)
    return _changed(
        session,
        clock=clock,
        actor=actor,
        hazard=hazard,
        unit=unit,
        action="extension",
        before=before,
        kind="extension",
        message=f"延期至{data.until.isoformat()}（原期限{old.isoformat()}）：{data.reason.strip()}",
        data={"from": old.isoformat(), "until": data.until.isoformat(), "reason": data.reason.strip()},
    )


def list_for_supervision(
    session: Session, *, clock: Clock, actor: Principal, hazard_id: int, data: ListingRequest
) -> Hazard:
    """挂牌督办: a major hazard is listed at the district or the city, which then hears of every missed deadline."""
    hazard, unit = hazard_service.lock(session, actor=actor, hazard_id=hazard_id)
    chain = {u.tier: u for u in unit_service.chain(session, unit)}
    target = chain.get(Tier(data.tier))
    if target is None:
        raise Invalid.field("tier", f"{unit.name} has no {data.tier} above it")
    if not actor.can("hazards:verify") or not actor.covers(target):
        raise RoleRefused(
            action="listing",
            actor=actor.actor,
            roles=_roles(actor),
            needs=f"a leader, unit admin or admin of {target.name} (or above) lists a hazard there",
            zh=f"由{target.name}（或更高一级）的带班领导或管理员挂牌",
        )
    _require_state(hazard, "listing", (Status.open, Status.rectifying, Status.submitted))
    if hazard.level != Level.major:
        raise StateRefused(
            action="listing",
            status=hazard.status,
            allowed=(),
            why="listing: only a major hazard is listed (挂牌督办)",
            zh="只有重大隐患可以挂牌督办",
        )
    order = [Tier.district, Tier.city]
    if hazard.listed_tier is not None and order.index(Tier(hazard.listed_tier)) >= order.index(Tier(data.tier)):
        raise StateRefused(
            action="listing",
            status=hazard.status,
            allowed=(),
            why=f"listing: already listed at the {hazard.listed_tier}",
            zh="该隐患已在同级或更高一级挂牌督办",
        )
    before = hazard_service.snapshot(hazard)
    hazard.listed_tier = data.tier
    hazard.listed_unit_id = target.id
    hazard.listed_at = clock.now()
    return _changed(
        session,
        clock=clock,
        actor=actor,
        hazard=hazard,
        unit=unit,
        action="listing",
        before=before,
        kind="listed",
        message=f"{target.name}挂牌督办：{data.reason.strip()}",
        data={"tier": data.tier, "unit": target.code, "reason": data.reason.strip()},
    )


def actions(actor: Principal, hazard: Hazard, unit: Unit, chain: dict[str, Unit]) -> list[str]:
    """What the actor may do with the hazard now (for the API's detail and the console's buttons)."""
    out: list[str] = []
    status = Status(hazard.status)
    writer = actor.can("hazards:write") and actor.covers(unit)
    if writer and status in (Status.open, Status.rectifying):
        out.append("plan")
    if writer and status != Status.closed:
        out.append("photo")
    if writer and status == Status.rectifying:
        out.append("submit")
    verifier = actor.can("hazards:verify") and actor.covers(unit)
    if status == Status.submitted and verifier and (hazard.level != Level.major or _strictly_above(actor, unit)):
        out.append("verify")
    if status != Status.closed and verifier and _strictly_above(actor, unit):
        out.append("extension")
    if status != Status.closed and hazard.level == Level.major and actor.can("hazards:verify"):
        listed = hazard.listed_tier
        for tier in (Tier.district, Tier.city):
            target = chain.get(tier)
            if (
                target is not None
                and actor.covers(target)
                and (listed is None or (listed, tier) == ("district", "city"))
            ):
                out.append(f"listing:{tier}")
    return out


def name_of(action: str) -> str:
    return ACTION_NAMES.get(action.split(":")[0], action)
