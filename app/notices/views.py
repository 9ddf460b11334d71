"""Notices as the API and the console show them: receipts per unit (the whole tree's), and a summary."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.notices import service as notice_service
from app.notices.models import Kind, Notice, NoticeReceipt, NoticeStatus, ReceiptState
from app.notices.schemas import Addressing, NoticeDetail, NoticePublic, NoticeSummary, ReceiptPublic
from app.org import units as unit_service
from app.org.models import Person
from app.roster.schemas import PersonBrief


def _summary(rows: Sequence[tuple[str, bool, bool]]) -> NoticeSummary:
    """From (state, fed back, late feedback) of each receipt."""
    return NoticeSummary(
        units=len(rows),
        signed=sum(1 for s, _, _ in rows if s == ReceiptState.signed),
        pending=sum(1 for s, _, _ in rows if s == ReceiptState.pending),
        overdue=sum(1 for s, _, _ in rows if s == ReceiptState.overdue),
        fed_back=sum(1 for _, f, _ in rows if f),
        late_feedback=sum(1 for _, _, late in rows if late),
    )


def _public(notice: Notice, unit_code: str, unit_name: str, summary: NoticeSummary) -> NoticePublic:
    assert notice.id is not None
    return NoticePublic(
        id=notice.id,
        code=notice.code,
        kind=Kind(notice.kind),
        title=notice.title,
        body=notice.body,
        unit_code=unit_code,
        unit_name=unit_name,
        to=Addressing.model_validate(notice.to),
        sign_within_seconds=notice.sign_within_seconds,
        feedback_due_at=notice.feedback_due_at,
        incident_id=notice.incident_id,
        color=notice.color,
        status=NoticeStatus(notice.status),
        version=notice.version,
        issued_by=notice.issued_by,
        created_at=notice.created_at,
        updated_at=notice.updated_at,
        summary=summary,
    )


def public_many(session: Session, rows: Sequence[Notice]) -> list[NoticePublic]:
    ids = [n.id for n in rows if n.id is not None]
    states: dict[int, list[tuple[str, bool, bool]]] = {i: [] for i in ids}
    if ids:
        query = select(
            NoticeReceipt.notice_id, NoticeReceipt.state, col(NoticeReceipt.feedback_at).is_not(None),
            NoticeReceipt.feedback_late,
        ).where(col(NoticeReceipt.notice_id).in_(ids))  # fmt: skip
        for notice_id, state, fed, late in session.exec(query).all():
            states[notice_id].append((state, bool(fed), bool(late)))
    units = unit_service.codes_by_id(session, {n.unit_id for n in rows})
    return [_public(n, units[n.unit_id].code, units[n.unit_id].name, _summary(states[n.id or 0])) for n in rows]


def detail(session: Session, notice: Notice) -> NoticeDetail:
    rows = notice_service.receipts(session, notice)
    units = unit_service.codes_by_id(session, {r.unit_id for r in rows} | {notice.unit_id})
    parents = {r.id: units[r.unit_id].code for r in rows}
    signer_ids = {r.signed_by_id for r in rows if r.signed_by_id is not None}
    people = (
        {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(signer_ids))).all()}
        if signer_ids
        else {}
    )
    base = _public(
        notice,
        units[notice.unit_id].code,
        units[notice.unit_id].name,
        _summary([(r.state, r.feedback_at is not None, r.feedback_late) for r in rows]),
    )
    return NoticeDetail(
        **base.model_dump(),
        receipts=[
            ReceiptPublic(
                id=r.id or 0,
                unit_code=units[r.unit_id].code,
                unit_name=units[r.unit_id].name,
                tier=units[r.unit_id].tier,
                parent_unit_code=parents.get(r.parent_id) if r.parent_id is not None else None,
                state=ReceiptState(r.state),
                due_at=r.due_at,
                signed_at=r.signed_at,
                signed_by=_brief(people.get(r.signed_by_id)) if r.signed_by_id is not None else None,
                signed_via=r.signed_via,
                feedback_at=r.feedback_at,
                feedback=r.feedback,
                feedback_late=r.feedback_late,
                forwarded=r.forwarded,
            )
            for r in rows
        ],
    )


def _brief(person: Person | None) -> PersonBrief | None:
    if person is None or person.id is None:
        return None
    return PersonBrief(id=person.id, name=person.name, phone=person.phone)
