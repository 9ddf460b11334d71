"""Notices, warnings and instructions down the tree: issue, sign (签收), feed back (反馈), forward, read.

Issuing writes the notice, one receipt per receiving unit, their first pages and the audit entry in the caller's
transaction. A receipt left unsigned is chased (app.notices.chase, on the one step machine of app.escalation).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, func, or_, select

from app import audit, labels
from app.auth import service as auth_service
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import Forbidden, Invalid, NotFound
from app.notices import chase as notice_chase
from app.notices import targets
from app.notices.models import Kind, Notice, NoticeReceipt, NoticeStatus, ReceiptState
from app.notices.schemas import Addressing, NoticeCreate
from app.org import paths
from app.org import units as unit_service
from app.org.models import Person, Role, Unit
from app.roster import service as roster_service
from app.roster.models import DUTY_ROLES

CODE_PREFIX = "N"
_CODE_TRIES = 8


def label(notice: Notice) -> str:
    """How an SMS names the notice: 通知 / 指令, or a warning by its colour (红色预警)."""
    if notice.kind == Kind.warning and notice.color in labels.SEVERITY_COLORS:
        return f"{labels.SEVERITY_COLORS[notice.color]}预警"
    return labels.label("notice_kinds", notice.kind)


def _free_code(session: Session) -> str:
    for _ in range(_CODE_TRIES):
        code = targets.new_code(CODE_PREFIX)
        if session.exec(select(Notice.id).where(Notice.code == code)).first() is None:
            return code
    raise RuntimeError("no free notice code after several tries")  # 31**4 codes: practically unreachable


def _own_unit(session: Session, actor: Principal, unit_code: str | None, field: str = "unit_code") -> Unit:
    if unit_code is not None:
        return unit_service.get(session, unit_code, field=field)
    if actor.unit_code is None:
        raise Forbidden(f"give {field}: this principal has no unit of its own")
    return unit_service.get(session, actor.unit_code, field=field)


def page_params(notice: Notice, issuer: Unit, unit: Unit) -> dict[str, Any]:
    return {
        "label": label(notice),
        "issuer": issuer.name,
        "unit": unit.name,
        "title": notice.title,
        "minutes": max(1, round(notice.sign_within_seconds / 60)),
        "code": notice.code,
    }


def add_receipts(
    session: Session, *, clock: Clock, notice: Notice, issuer: Unit, units: Sequence[Unit], parent_id: int | None
) -> list[int]:
    """One receipt per unit, in one INSERT, each chased from its duty officer up (app.notices.chase)."""
    if not units:
        return []
    now = clock.now()
    rows = [
        {
            "notice_id": notice.id,
            "unit_id": u.id,
            "unit_path": u.path,
            "parent_id": parent_id,
            "state": ReceiptState.pending.value,
            "due_at": now + timedelta(seconds=notice.sign_within_seconds),
            "feedback_late": False,
            "forwarded": False,
            "created_at": now,
        }
        for u in units
    ]
    table = NoticeReceipt.__table__  # type: ignore[attr-defined]
    # The driver's executemany (a multi-row INSERT … RETURNING of hundreds of rows is slow to even parse), then ids.
    session.execute(insert(table), rows)
    wanted = [u.id for u in units]
    ids = session.execute(
        select(table.c.id, table.c.unit_id).where(table.c.notice_id == notice.id, table.c.unit_id.in_(wanted))
    ).all()
    by_id = {u.id: u for u in units}
    notice_chase.begin(
        session, clock=clock, notice=notice, issuer=issuer, receipts=[(rid, by_id[uid]) for rid, uid in ids]
    )
    return [receipt_id for receipt_id, _ in ids]


def _check_feedback_due(clock: Clock, due: datetime | None) -> None:
    if due is not None and due <= clock.now():
        raise Invalid.field("feedback_due_at", "must be in the future")


def issue(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    data: NoticeCreate,
    color: str | None = None,
    issuer: Unit | None = None,
    receivers: Sequence[Unit] | None = None,
    permission: str = "notices:write",
) -> Notice:
    """Issue a notice, warning or instruction to units below the issuer; every receiving unit's duty officer is
    paged to sign within the window."""
    issuer = issuer or _own_unit(session, actor, data.unit_code)
    authorize(actor, permission, issuer)
    if data.kind == Kind.instruction:
        authorize(actor, "instructions:write", issuer)
    _check_feedback_due(clock, data.feedback_due_at)
    if receivers is None:
        receivers = targets.resolve(
            session,
            actor=actor,
            root=issuer,
            scope=data.to.scope,
            tiers=[str(t) for t in data.to.tiers],
            codes=data.to.units,
        )
    if data.incident_id is not None:
        from app.incidents import service as incident_service  # an incident's notices: readable by the issuer

        incident_service.get(session, actor=actor, incident_id=data.incident_id)
    now = clock.now()
    assert issuer.id is not None
    notice = Notice(
        code=_free_code(session),
        kind=data.kind,
        title=data.title.strip(),
        body=data.body,
        unit_id=issuer.id,
        unit_path=issuer.path,
        to=data.to.model_dump(mode="json"),
        sign_within_seconds=data.sign_within_seconds,
        feedback_due_at=data.feedback_due_at,
        incident_id=data.incident_id,
        color=color,
        issued_by=actor.actor,
        created_at=now,
        updated_at=now,
    )
    session.add(notice)
    session.flush()
    add_receipts(session, clock=clock, notice=notice, issuer=issuer, units=receivers, parent_id=None)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="notice.issue",
        object_type="notice",
        object_id=notice.id,
        unit_path=issuer.path,
        after={
            "code": notice.code,
            "kind": notice.kind,
            "title": notice.title,
            "to": notice.to,
            "units": len(receivers),
            "sign_within_seconds": notice.sign_within_seconds,
            "incident_id": notice.incident_id,
        },
    )
    session.flush()
    return notice


def receipts(session: Session, notice: Notice) -> list[NoticeReceipt]:
    query = select(NoticeReceipt).where(NoticeReceipt.notice_id == notice.id).order_by(col(NoticeReceipt.unit_path))
    return list(session.exec(query).all())


def may_read(session: Session, actor: Principal, notice: Notice) -> bool:
    """The issuer's subtree reads a notice, and so does every receiving unit's subtree."""
    if not actor.can("notices:read"):
        return False
    root = actor.unit_path
    if root is None or paths.within(notice.unit_path, root):
        return True
    query = select(NoticeReceipt.id).where(
        NoticeReceipt.notice_id == notice.id,
        paths.sql_within(col(NoticeReceipt.unit_path), root),
    )
    return session.exec(query.limit(1)).first() is not None


def get(session: Session, *, actor: Principal, notice_id: int) -> Notice:
    notice = session.get(Notice, notice_id)
    if notice is None or not may_read(session, actor, notice):
        raise NotFound(f"no notice with id {notice_id}")
    return notice


def listing(
    session: Session,
    *,
    actor: Principal,
    kind: Kind | None,
    unit: Unit | None,
    box: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[Notice], int]:
    """What a unit (default: the actor's) issued or received, newest first; `box` "sent" or "inbox" narrows it."""
    unit = unit or (unit_service.get(session, actor.unit_code) if actor.unit_code else None)
    authorize(actor, "notices:read")
    if unit is not None and not actor.covers(unit):
        raise Forbidden(f"unit {unit.code} ({unit.name}) is outside the scope of {actor.actor}")
    query = select(Notice)
    if unit is not None:
        received = select(NoticeReceipt.notice_id).where(NoticeReceipt.unit_id == unit.id)
        sent = col(Notice.unit_id) == unit.id
        got = col(Notice.id).in_(received)
        query = query.where(sent if box == "sent" else got if box == "inbox" else or_(sent, got))
    if kind is not None:
        query = query.where(Notice.kind == kind)
    if since is not None:
        query = query.where(col(Notice.created_at) >= since)
    if until is not None:
        query = query.where(col(Notice.created_at) < until)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Notice.created_at).desc(), col(Notice.id).desc()).offset(offset).limit(limit)
    )
    return list(rows.all()), total


def _person(session: Session, actor: Principal) -> Person:
    if actor.kind != "person" or actor.id is None:
        raise Forbidden("only a person on duty at the receiving unit signs for it")
    person = session.get(Person, actor.id)
    assert person is not None
    return person


def may_act_for(session: Session, *, clock: Clock, person: Person, actor: Principal, unit: Unit) -> bool:
    """On duty at the unit now (duty officer or leader), or an admin over it."""
    if {Role.admin, Role.unit_admin} & set(person.roles) and actor.covers(unit):
        return True
    on_duty = roster_service.resolve_many(session, units=[unit], at=clock.now())
    return any((p := on_duty.get((unit.id or 0, role))) is not None and p.id == person.id for role in DUTY_ROLES)


def _receipt_for(
    session: Session, *, clock: Clock, actor: Principal, notice: Notice, unit_code: str | None
) -> tuple[NoticeReceipt, Person, Unit]:
    authorize(actor, "notices:sign")
    person = _person(session, actor)
    unit = _own_unit(session, actor, unit_code)
    receipt = session.exec(
        select(NoticeReceipt).where(NoticeReceipt.notice_id == notice.id, NoticeReceipt.unit_id == unit.id)
    ).first()
    if receipt is None:
        raise NotFound(f"notice {notice.code} was not sent to {unit.code} ({unit.name})")
    if not may_act_for(session, clock=clock, person=person, actor=actor, unit=unit):
        raise Forbidden(f"{person.name} is not on duty at {unit.name} (nor its admin) and cannot sign for it")
    return receipt, person, unit


def sign_receipt(
    session: Session, *, clock: Clock, notice: Notice, receipt: NoticeReceipt, person: Person, via: str
) -> NoticeReceipt:
    """Record the unit's signature (签收); signing twice changes nothing. An overdue receipt signed late is
    signed, with its time on record."""
    receipt = session.exec(select(NoticeReceipt).where(NoticeReceipt.id == receipt.id).with_for_update()).one()
    if receipt.state == ReceiptState.signed:
        return receipt
    now = clock.now()
    receipt.state = ReceiptState.signed
    receipt.signed_at = now
    receipt.signed_by_id = person.id
    receipt.signed_by_name = person.name
    receipt.signed_via = via
    receipt.signed_version = notice.version
    session.add(receipt)
    audit.record(
        session,
        clock=clock,
        actor=auth_service.person_principal(session, person.id or 0),
        action="notice.sign",
        object_type="notice",
        object_id=notice.id,
        unit_path=receipt.unit_path,
        after={"receipt_id": receipt.id, "version": notice.version, "via": via, "late": now > receipt.due_at},
    )
    notice_chase.signed(session, clock=clock, notice=notice, receipt=receipt, by=f"person:{person.id}", via=via)
    session.flush()
    return receipt


def sign(
    session: Session, *, clock: Clock, actor: Principal, notice_id: int, unit_code: str | None, via: str = "api"
) -> NoticeReceipt:
    """A person on duty at a receiving unit (or its admin) signs for it."""
    notice = get(session, actor=actor, notice_id=notice_id)
    receipt, person, _ = _receipt_for(session, clock=clock, actor=actor, notice=notice, unit_code=unit_code)
    return sign_receipt(session, clock=clock, notice=notice, receipt=receipt, person=person, via=via)


def feedback(
    session: Session, *, clock: Clock, actor: Principal, notice_id: int, text: str, unit_code: str | None
) -> NoticeReceipt:
    """The unit reports what it did (落实反馈); after feedback_due_at it is marked late. Feedback signs too."""
    notice = get(session, actor=actor, notice_id=notice_id)
    receipt, person, _ = _receipt_for(session, clock=clock, actor=actor, notice=notice, unit_code=unit_code)
    receipt = sign_receipt(session, clock=clock, notice=notice, receipt=receipt, person=person, via="feedback")
    now = clock.now()
    receipt.feedback = text
    receipt.feedback_at = now
    receipt.feedback_by_name = person.name
    receipt.feedback_late = notice.feedback_due_at is not None and now > notice.feedback_due_at
    session.add(receipt)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="notice.feedback",
        object_type="notice",
        object_id=notice.id,
        unit_path=receipt.unit_path,
        after={"receipt_id": receipt.id, "late": receipt.feedback_late, "text": text[:200]},
    )
    session.flush()
    return receipt


def forward(
    session: Session, *, clock: Clock, actor: Principal, notice_id: int, unit_code: str | None, to: Addressing
) -> list[int]:
    """A receiving unit passes the notice to its own subtree; the new receipts hang below its own, so the issuer
    sees the whole tree. Units that already have the notice are left as they are."""
    notice = get(session, actor=actor, notice_id=notice_id)
    receipt, _, unit = _receipt_for(session, clock=clock, actor=actor, notice=notice, unit_code=unit_code)
    wanted = targets.resolve(
        session, actor=actor, root=unit, scope=to.scope, tiers=[str(t) for t in to.tiers], codes=to.units
    )
    have = set(session.exec(select(NoticeReceipt.unit_id).where(NoticeReceipt.notice_id == notice.id)).all())
    fresh = [u for u in wanted if u.id not in have]
    if not fresh:
        raise Invalid.field("to", "every unit in scope already has this notice")
    issuer = session.get(Unit, notice.unit_id)
    assert issuer is not None
    ids = add_receipts(session, clock=clock, notice=notice, issuer=issuer, units=fresh, parent_id=receipt.id)
    receipt.forwarded = True
    session.add(receipt)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="notice.forward",
        object_type="notice",
        object_id=notice.id,
        unit_path=unit.path,
        after={"from_unit": unit.code, "units": [u.code for u in fresh]},
    )
    session.flush()
    return ids


def cancel(session: Session, *, clock: Clock, actor: Principal, notice: Notice, reason: str) -> Notice:
    """Withdraw a notice (a CAP Cancel): its chase stops and every receiving unit's duty officer is told."""
    if notice.status == NoticeStatus.cancelled:
        return notice
    now = clock.now()
    notice.status = NoticeStatus.cancelled
    notice.cancelled_at = now
    notice.updated_at = now
    session.add(notice)
    rows = receipts(session, notice)
    issuer = session.get(Unit, notice.unit_id)
    assert issuer is not None
    units = unit_service.codes_by_id(session, {r.unit_id for r in rows})
    notice_chase.withdraw(session, clock=clock, notice=notice, receipts=rows, reason="cancelled")
    notice_chase.tell_cancelled(
        session, clock=clock, notice=notice, issuer=issuer, units=[(r.id or 0, units[r.unit_id]) for r in rows]
    )
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="notice.cancel",
        object_type="notice",
        object_id=notice.id,
        unit_path=notice.unit_path,
        after={"reason": reason},
    )
    session.flush()
    return notice


def amend(
    session: Session,
    *,
    clock: Clock,
    actor: Principal,
    notice: Notice,
    title: str,
    body: str,
    color: str | None,
    sign_within_seconds: int,
    units: Sequence[Unit],
) -> Notice:
    """A new version of a notice (a CAP Update): every receiving unit signs again; new units get it."""
    now = clock.now()
    before = {"title": notice.title, "color": notice.color, "version": notice.version}
    rows = receipts(session, notice)
    notice_chase.withdraw(session, clock=clock, notice=notice, receipts=rows, reason="updated")
    notice.title, notice.body, notice.color = title, body, color
    notice.sign_within_seconds = sign_within_seconds
    notice.version += 1
    notice.updated_at = now
    notice.status = NoticeStatus.active
    session.add(notice)
    issuer = session.get(Unit, notice.unit_id)
    assert issuer is not None
    have = {r.unit_id for r in rows}
    by_id = unit_service.codes_by_id(session, have)
    for r in rows:
        r.state = ReceiptState.pending
        r.due_at = now + timedelta(seconds=sign_within_seconds)
        session.add(r)
    session.flush()
    notice_chase.begin(
        session, clock=clock, notice=notice, issuer=issuer, receipts=[(r.id or 0, by_id[r.unit_id]) for r in rows]
    )
    fresh = [u for u in units if u.id not in have]
    add_receipts(session, clock=clock, notice=notice, issuer=issuer, units=fresh, parent_id=None)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="notice.amend",
        object_type="notice",
        object_id=notice.id,
        unit_path=notice.unit_path,
        before=before,
        after={"title": title, "color": color, "version": notice.version, "new_units": [u.code for u in fresh]},
    )
    session.flush()
    return notice
