"""Group robots of units (WeCom 企业微信 group robots, DingTalk 钉钉 custom robots in signed mode).

Pages for a unit's tier are also posted to its group, @-mentioning the person paged by mobile. A robot takes at
most 20 messages a minute (DingTalk then mutes it for ten minutes), so posts are bundled:

- every post is its own outbox row (channel `robot`, recipient `robot:<id>`, on the incident's record), due at
  the robot's next free slot: now when the last slot was at least `SPACING` ago, else that slot plus `SPACING`,
  or the still-open slot itself when one lies ahead;
- the dispatcher sends every row of a robot that is due in one message (`bundle`).

Slots at least 60/19 s apart keep any 60-second window (ends included) to 20 messages, whatever the traffic;
the slot is read from the outbox rows under a lock on the robot's row, so replicas agree on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import event, func
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app import audit
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.db import is_postgres
from app.errors import Invalid, NotFound
from app.notify import outbox
from app.notify.models import Channel, OutboxMessage, RobotKind, Status, UnitRobot
from app.org import units as unit_service
from app.org.models import Person, Unit

PER_MINUTE = 20
SPACING = timedelta(seconds=60 / (PER_MINUTE - 1))
# What each robot accepts in one text message (WeCom: 2,048 bytes of UTF-8; DingTalk: 20,000 bytes).
CONTENT_BYTES = {RobotKind.wecom: 2048, RobotKind.dingtalk: 20000}
# The query parameter of each kind's URL that identifies (and unlocks) the robot.
URL_KEY = {RobotKind.wecom: "key", RobotKind.dingtalk: "access_token"}
HEADER = "【应急值守】"
_CACHE = "notify.robots.by_unit"
_REPLY_HINT = re.compile(r"[,，]?(请于[^，,。]*内)?(请)?回复1签收$")


class RobotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["wecom", "dingtalk"]
    webhook_url: str = Field(
        max_length=500, examples=["https://oapi.dingtalk.com/robot/send?access_token=…"], description="the robot's URL"
    )
    secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=200,
        description="DingTalk: the signing secret (SEC…), required; WeCom: none (the key is in the URL)",
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return value


class RobotPublic(BaseModel):
    id: int
    unit_code: str
    kind: str
    webhook_url: str = Field(description="the key or access token masked")
    signed: bool
    created_by: str
    created_at: datetime


def masked(url: str) -> str:
    """The URL with its key / access token cut to four characters: enough to tell robots apart."""
    parts = urlsplit(url)
    query = [(k, v[:4] + "****" if k in URL_KEY.values() and v else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def public(robot: UnitRobot, unit: Unit) -> RobotPublic:
    assert robot.id is not None
    return RobotPublic(
        id=robot.id,
        unit_code=unit.code,
        kind=robot.kind,
        webhook_url=masked(robot.webhook_url),
        signed=bool(robot.secret),
        created_by=robot.created_by,
        created_at=robot.created_at,
    )


def _check(data: RobotCreate) -> None:
    kind = RobotKind(data.kind)
    query = dict(parse_qsl(urlsplit(data.webhook_url).query))
    if not query.get(URL_KEY[kind]):
        raise Invalid.field("webhook_url", f"a {kind} robot's URL carries its {URL_KEY[kind]}=… parameter")
    if kind == RobotKind.dingtalk and not data.secret:
        raise Invalid.field("secret", "a DingTalk robot is used in signed mode: give its secret (SEC…)")
    if kind == RobotKind.wecom and data.secret:
        raise Invalid.field("secret", "a WeCom group robot is not signed: leave secret out")


def create(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    unit_code: str,
    data: RobotCreate,
    check_url: Callable[[str], None],
) -> RobotPublic:
    """Register a group robot for a unit. `check_url` refuses targets the service must not reach (an Invalid)."""
    unit = unit_service.get(session, unit_code)
    authorize(actor, "robots:write", unit)
    _check(data)
    check_url(data.webhook_url)
    assert unit.id is not None
    robot = UnitRobot(
        unit_id=unit.id,
        kind=data.kind,
        webhook_url=data.webhook_url,
        secret=data.secret,
        created_by=actor.actor,
        created_at=clock.now(),
    )
    session.add(robot)
    session.flush()
    shown = public(robot, unit)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="unit_robot.create",
        object_type="unit_robot",
        object_id=robot.id,
        unit_path=unit.path,
        after=shown.model_dump(mode="json"),  # masked URL, never the secret
    )
    return shown


def listing(session: Session, *, actor: Principal, unit_code: str) -> list[RobotPublic]:
    """A unit's active robots."""
    unit = unit_service.get(session, unit_code)
    authorize(actor, "robots:read", unit)
    return [public(r, unit) for r in active(session, unit)]


def active(session: Session, unit: Unit) -> list[UnitRobot]:
    query = select(UnitRobot).where(UnitRobot.unit_id == unit.id, col(UnitRobot.active).is_(True))
    return list(session.exec(query.order_by(col(UnitRobot.id))).all())


@event.listens_for(OrmSession, "after_commit")
@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    session.info.pop(_CACHE, None)


def preload(session: Session, unit_ids: set[int]) -> None:
    """Read the robots of many units in one query (a tick's batch pages across hundreds of units), for paging."""
    cache: dict[int | None, list[UnitRobot]] = session.info.setdefault(_CACHE, {})
    wanted = sorted(i for i in unit_ids if i not in cache)
    if not wanted:
        return
    query = select(UnitRobot).where(col(UnitRobot.unit_id).in_(wanted), col(UnitRobot.active).is_(True))
    with session.no_autoflush:
        robots = session.exec(query.order_by(col(UnitRobot.id))).all()
    for unit_id in wanted:
        cache[unit_id] = []
    for robot in robots:
        cache[robot.unit_id].append(robot)


def _robots_of(session: Session, unit: Unit) -> list[UnitRobot]:
    """A unit's robots, read once per transaction (a tick pages hundreds of times, most units have none)."""
    cache: dict[int | None, list[UnitRobot]] = session.info.setdefault(_CACHE, {})
    if unit.id not in cache:
        cache[unit.id] = active(session, unit)
    return cache[unit.id]


def delete(session: Session, *, clock: Clock, actor: Principal, unit_code: str, robot_id: int) -> None:
    """Stop posting to a robot; its queued posts fail (nothing to send them to)."""
    unit = unit_service.get(session, unit_code)
    authorize(actor, "robots:write", unit)
    robot = session.get(UnitRobot, robot_id)
    if robot is None or not robot.active or robot.unit_id != unit.id:
        raise NotFound(f"no robot {robot_id} in unit {unit.code}")
    before = public(robot, unit).model_dump(mode="json")
    robot.active = False
    robot.deleted_at = clock.now()
    session.add(robot)
    session.flush()
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="unit_robot.delete",
        object_type="unit_robot",
        object_id=robot.id,
        unit_path=unit.path,
        before=before,
    )


# ---- posting pages ----


def mobile(phone: str) -> str | None:
    """The 11-digit mainland mobile a robot @-mentions; None for other numbers (robots cannot mention them)."""
    return phone[3:] if phone.startswith("+86") and len(phone) == 14 else None


def line(sms_text: str, *, who: str, phone: str) -> str:
    """One post: the page's text without the SMS reply hint (a group cannot reply), then whom it is for."""
    at = mobile(phone)
    return f"{_REPLY_HINT.sub('', sms_text)}。请{who}签收" + (f" @{at}" if at else "")


def _next_slot(session: Session, robot: UnitRobot, now: datetime) -> datetime:
    if is_postgres(session):  # one writer at a time per robot: replicas must not pick two slots side by side
        session.exec(select(UnitRobot.id).where(UnitRobot.id == robot.id).with_for_update())
    mine = OutboxMessage.robot_id == robot.id
    waiting = session.exec(
        select(func.max(OutboxMessage.next_attempt_at)).where(mine, OutboxMessage.status == Status.queued)
    ).one()
    if waiting is not None and waiting >= now:
        return waiting  # a slot still ahead: join it
    # When the last message went (or is due): a late dispatcher sends after the slot, never before.
    last = session.exec(
        select(func.max(func.coalesce(OutboxMessage.sent_at, OutboxMessage.next_attempt_at))).where(mine)
    ).one()
    return now if last is None else max(now, last + SPACING)


def page_rows(
    session: Session,
    *,
    clock: Clock,
    unit: Unit,
    person: Person,
    who: str,
    sms_text: str,
    dedup_base: str,
    incident_id: int | None,
    incident_code: str | None,
    tier: str | None,
    step: int | None,
) -> dict[str, dict[str, Any]]:
    """Outbox rows posting a page to each of the unit's robots, keyed `robot:<id>`, each due at its robot's slot."""
    with session.no_autoflush:  # the caller's half-made rows (a new incident's tiers) stay pending
        return _page_rows(
            session, clock, unit, person, who, sms_text, dedup_base, incident_id, incident_code, tier, step
        )


def _page_rows(
    session: Session,
    clock: Clock,
    unit: Unit,
    person: Person,
    who: str,
    sms_text: str,
    dedup_base: str,
    incident_id: int | None,
    incident_code: str | None,
    tier: str | None,
    step: int | None,
) -> dict[str, dict[str, Any]]:
    robots = _robots_of(session, unit)
    if not robots:
        return {}
    now = clock.now()
    text = line(sms_text, who=who, phone=person.phone)
    at = mobile(person.phone)
    rows: dict[str, dict[str, Any]] = {}
    for robot in robots:
        assert robot.id is not None
        row = outbox.message(
            clock=clock,
            channel=Channel.robot,
            to=f"robot:{robot.id}",
            template="robot_post",
            params={"mobiles": [at] if at else []},
            body=text,
            dedup_key=f"{dedup_base}:robot:{robot.id}",
            person_id=person.id,
            incident_id=incident_id,
            incident_code=incident_code,
            tier=tier,
            step=step,
            robot_id=robot.id,
        )
        row["next_attempt_at"] = _next_slot(session, robot, now)
        rows[f"robot:{robot.id}"] = row
    return rows


# ---- bundling (the dispatcher) ----


@dataclass(frozen=True)
class Target:
    kind: str
    url: str
    secret: str | None


def targets(session: Session, ids: set[int]) -> dict[int, Target]:
    """The active robots among `ids`, with what a send needs."""
    if not ids:
        return {}
    query = select(UnitRobot).where(col(UnitRobot.id).in_(ids), col(UnitRobot.active).is_(True))
    return {r.id: Target(r.kind, r.webhook_url, r.secret) for r in session.exec(query).all() if r.id is not None}


def content(kind: str, lines: Sequence[str]) -> str:
    """One message for the posts of a bundle, within the robot's size limit (the newest dropped, and counted)."""
    limit = CONTENT_BYTES.get(RobotKind(kind), 2048)
    head = HEADER if len(lines) == 1 else f"{HEADER}{len(lines)}条通知"
    kept: list[str] = []
    for index, text in enumerate(lines):
        rest = len(lines) - index - 1
        tail = f"\n……另有{rest}条，请登录平台查看" if rest else ""
        candidate = "\n".join([head, *kept, text]) + tail
        if len(candidate.encode()) > limit:
            more = len(lines) - len(kept)
            return "\n".join([head, *kept]) + f"\n……另有{more}条，请登录平台查看"
        kept.append(text)
    return "\n".join([head, *kept])
