"""Warnings taken in as CAP 1.2: Alert issues a warning notice, Update amends it, Cancel withdraws it; an identifier
seen before changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.db import insert_unless_conflict
from app.errors import Forbidden, Invalid
from app.notices import cap, targets
from app.notices import service as notice_service
from app.notices.models import CapMessage, Kind, Notice
from app.notices.schemas import Addressing, NoticeCreate
from app.org import paths
from app.org import units as unit_service
from app.org.models import Tier, Unit

_TABLE = CapMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Taken:
    notice: Notice
    created: bool  # a new warning notice (an Alert); False for an Update, a Cancel or a repeat
    repeat: bool


def _issuer(session: Session, actor: Principal) -> Unit:
    """The agency's own unit, or the root of the tree for a city-wide early-warning system."""
    if actor.unit_code is not None:
        return unit_service.get(session, actor.unit_code)
    root = session.exec(select(Unit).where(Unit.tier == Tier.city).order_by(col(Unit.id))).first()
    if root is None:
        raise Invalid.field("alert", "no units are loaded")
    return root


def _receivers(session: Session, actor: Principal, issuer: Unit, alert: cap.Alert) -> list[Unit]:
    """The units of the alert's areas: a district code means the district and its streets."""
    codes = alert.codes
    found = {u.code: u for u in unit_service.by_codes(session, codes)}
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise Invalid.field("alert.info.area.geocode", f"unknown GB/T 2260 code(s) {', '.join(unknown[:10])}")
    units: dict[str, Unit] = {}
    for unit in found.values():
        if not actor.covers(unit) or not paths.within(unit.path, issuer.path):
            raise Forbidden(f"area {unit.code} ({unit.name}) is outside the scope of {actor.actor}")
        if unit.path != issuer.path:
            units[unit.code] = unit
        for below in targets.below(session, unit, scope=targets.SUBTREE):
            units[below.code] = below
    if not units:
        raise Invalid.field("alert.info.area.geocode", "names no unit below the issuer")
    return sorted(units.values(), key=lambda u: u.path)


def _notice_of(session: Session, message: CapMessage) -> Notice:
    notice = session.get(Notice, message.notice_id) if message.notice_id is not None else None
    assert notice is not None  # set in the transaction that took the message in
    return notice


def _title(alert: cap.Alert) -> str:
    title = alert.headline or alert.event or "预警"
    return ("【演练】" if alert.status == "Exercise" else "") + title


def _body(alert: cap.Alert) -> str:
    return "\n".join(part for part in (alert.description, alert.instruction) if part) or _title(alert)


def take(session: Session, *, clock: Clock, actor: Principal, raw: bytes) -> Taken:
    """Act on one CAP alert; nothing is written unless all of it is valid."""
    authorize(actor, "warnings:write")
    alert = cap.parse(raw)
    issuer = _issuer(session, actor)
    earlier: Notice | None = None
    if alert.msg_type != "Alert":
        previous = session.exec(
            select(CapMessage).where(col(CapMessage.identifier).in_(alert.references)).order_by(col(CapMessage.id))
        ).first()
        if previous is None:
            seen = session.exec(select(CapMessage).where(CapMessage.identifier == alert.identifier)).first()
            if seen is not None:  # a repeat of an Update or Cancel whose original is known: nothing changes
                return Taken(_notice_of(session, seen), created=False, repeat=True)
            raise Invalid.field("alert.references", "references no alert received here")
        earlier = _notice_of(session, previous)
    receivers = _receivers(session, actor, issuer, alert) if alert.msg_type != "Cancel" else []
    # The identifier is claimed first: a repeat (or the same alert posted twice at once) writes nothing more.
    claimed = insert_unless_conflict(
        session,
        _TABLE,
        {
            "identifier": alert.identifier,
            "sender": alert.sender,
            "sent": alert.sent,
            "msg_type": alert.msg_type,
            "notice_id": earlier.id if earlier else None,
            "received_at": clock.now(),
            "received_by": actor.actor,
            "document": raw.decode("utf-8", errors="replace"),
        },
        on=("identifier",),
    )
    if claimed is None:
        seen = session.exec(select(CapMessage).where(CapMessage.identifier == alert.identifier)).one()
        return Taken(_notice_of(session, seen), created=False, repeat=True)
    color = alert.color
    if alert.msg_type == "Alert":
        assert color is not None
        notice = notice_service.issue(
            session,
            clock=clock,
            actor=actor,
            data=NoticeCreate(
                kind=Kind.warning,
                title=_title(alert)[:200],
                body=_body(alert)[:5000],
                unit_code=issuer.code,
                to=Addressing(units=alert.codes),
                sign_within_seconds=cap.COLOR_WINDOW[color],
            ),
            color=color,
            issuer=issuer,
            receivers=receivers,
            permission="warnings:write",
        )
        created = True
    elif alert.msg_type == "Update":
        assert earlier is not None and color is not None
        notice = notice_service.amend(
            session,
            clock=clock,
            actor=actor,
            notice=earlier,
            title=_title(alert)[:200],
            body=_body(alert)[:5000],
            color=color,
            sign_within_seconds=cap.COLOR_WINDOW[color],
            units=receivers,
        )
        created = False
    else:
        assert earlier is not None
        notice = notice_service.cancel(session, clock=clock, actor=actor, notice=earlier, reason=alert.identifier)
        created = False
    row = session.get(CapMessage, claimed)
    assert row is not None
    row.notice_id = notice.id
    session.add(row)
    session.flush()
    return Taken(notice, created=created, repeat=False)
