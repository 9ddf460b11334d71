"""The per-number daily SMS budget (DUTYLINE_SMS_DAILY_BUDGET): carriers stop delivering after about ten
notifications a day to one number, and an escalation that repeats until someone answers would reach it.

Counted from the outbox rows (SMS to that number since local midnight in the unit's zone), so every replica
sees the same count; within one transaction the SMS it has planned but not yet written count too. With a
budget of N: the N-th SMS of the day is a digest of what is still pending for the person; beyond it, a page
that needs an acknowledgement goes by voice, an informational one stays in the console.
Two transactions paging one number at the same instant may both see the same count (no lock is taken, so
that pages never wait on each other): the budget may then be overshot by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, event, func, not_
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier
from app.notify.models import Channel, OutboxMessage, Status

DEFAULT_DAILY = 8
# The templates of pages that need an acknowledgement; every other SMS is informational.
NEEDS_ACK = frozenset({"incident_page", "incident_reminder", "tier_unresponsive", "incident_regraded"})
DIGEST = "digest"
DIGEST_CODES = 6  # codes named in the digest; more are counted ("等9起")
_COUNTS = "notify.budget.counts"

_daily = DEFAULT_DAILY


def set_daily_budget(count: int) -> None:
    """SMS per number per local day (DUTYLINE_SMS_DAILY_BUDGET); called once at start-up."""
    global _daily
    if count < 1:
        raise ValueError("the daily SMS budget is at least 1")
    _daily = count


def daily_budget() -> int:
    return _daily


@event.listens_for(OrmSession, "after_commit")
@event.listens_for(OrmSession, "after_rollback")
def _forget(session: OrmSession) -> None:
    session.info.pop(_COUNTS, None)


Kind = Literal["sms", "digest", "voice", "console"]


@dataclass(frozen=True)
class Plan:
    kind: Kind
    sent_today: int  # SMS to the number today before this page
    budget: int

    @property
    def note(self) -> str | None:
        """What the timeline says about the budget, when it changed how the page goes."""
        if self.kind == "digest":
            return f"今日第{self.budget}条短信，改发待签收汇总"
        if self.kind == "voice":
            return f"今日短信已达{self.budget}条，改为电话"
        if self.kind == "console":
            return f"今日短信已达{self.budget}条，通报仅在平台显示"
        return None


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)


def preload(session: Session, *, phones: set[str], now: datetime, zone: ZoneInfo) -> None:
    """Count today's SMS (since local midnight; those that failed before ever leaving excluded) of the numbers not
    counted yet in this transaction, in one query: a tick's batch pages hundreds of people."""
    counts: dict[tuple[str, str], int] = session.info.setdefault(_COUNTS, {})
    day = now.astimezone(zone).date().isoformat()
    wanted = sorted(p for p in phones if (p, day) not in counts)
    if not wanted:
        return
    never_left = and_(col(OutboxMessage.status) == Status.failed, col(OutboxMessage.sent_at).is_(None))
    query = (
        select(OutboxMessage.recipient, func.count())
        .where(
            col(OutboxMessage.channel) == Channel.sms,
            col(OutboxMessage.recipient).in_(wanted),
            col(OutboxMessage.created_at) >= local_midnight(now, zone),
            not_(never_left),
        )
        .group_by(col(OutboxMessage.recipient))
    )
    with session.no_autoflush:
        found = dict(session.exec(query).all())
    for phone in wanted:
        counts[(phone, day)] = int(found.get(phone, 0))


def plan(session: Session, *, phone: str, now: datetime, zone: ZoneInfo, needs_ack: bool) -> Plan:
    """How a page to `phone` goes, and counts its SMS (if any) against today's budget."""
    counts: dict[tuple[str, str], int] = session.info.setdefault(_COUNTS, {})
    day = (phone, now.astimezone(zone).date().isoformat())
    preload(session, phones={phone}, now=now, zone=zone)  # a no-op when the batch counted it already
    used, budget = counts[day], _daily
    if used < budget - 1:
        kind: Kind = "sms"
    elif used == budget - 1:
        kind = "digest"
    else:
        kind = "voice" if needs_ack else "console"
    if kind in ("sms", "digest"):
        counts[day] = used + 1
    return Plan(kind, used, budget)


def pending_codes(session: Session, *, person_id: int, also: str | None = None) -> list[str]:
    """The codes of open incidents on which this person was paged and whose tier has not acknowledged, oldest
    first; `also` (the page being written, perhaps not yet in the outbox) is included."""
    query = (
        select(Incident.code, func.min(OutboxMessage.id))
        .join(Incident, col(Incident.id) == col(OutboxMessage.incident_id))
        .join(
            IncidentTier,
            and_(col(IncidentTier.incident_id) == col(Incident.id), col(IncidentTier.tier) == col(OutboxMessage.tier)),
        )
        .where(
            col(OutboxMessage.person_id) == person_id,
            col(OutboxMessage.template).in_([*NEEDS_ACK, DIGEST, "voice_page"]),
            col(Incident.status).in_(OPEN_STATUSES),
            col(IncidentTier.required).is_(True),
            col(IncidentTier.acknowledged_at).is_(None),
        )
        .group_by(Incident.code)
        .order_by(func.min(OutboxMessage.id))
    )
    with session.no_autoflush:
        codes = [code for code, _ in session.exec(query).all()]
    if also and also not in codes:
        codes.append(also)
    return codes


def digest_params(codes: list[str]) -> dict[str, str]:
    """Parameters of the `digest` template: the count and the codes (a few, then how many more)."""
    shown = "、".join(codes[:DIGEST_CODES])
    if len(codes) > DIGEST_CODES:
        shown += f"等{len(codes)}起"
    return {"count": str(len(codes)), "codes": shown}
