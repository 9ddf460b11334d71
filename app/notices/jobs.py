"""Scheduled entry point of notices: the issuer's duty officer told which receiving units are overdue, one SMS per
notice for all those overdue at that moment. Receipts are claimed with row locks, so replicas never tell twice."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, col, select

from app.clock import Clock
from app.escalation import chase
from app.notices import chase as notice_chase
from app.notices import service as notice_service
from app.notices.models import Notice, NoticeReceipt, ReceiptState
from app.org import units as unit_service

UNITS_CHARACTERS = 50  # the overdue units' names, kept within two SMS segments


def tell_issuers(session: Session, *, clock: Clock, limit: int = 500) -> int:
    """Overdue receipts whose issuer was not told yet: one alert per notice to the issuer's duty officer."""
    now = clock.now()
    rows = session.exec(
        select(NoticeReceipt)
        .where(NoticeReceipt.state == ReceiptState.overdue, col(NoticeReceipt.issuer_told_at).is_(None))
        .order_by(col(NoticeReceipt.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    by_notice: dict[int, list[NoticeReceipt]] = defaultdict(list)
    for r in rows:
        by_notice[r.notice_id].append(r)
    for notice_id, receipts in by_notice.items():
        notice = session.get(Notice, notice_id)
        assert notice is not None
        units = unit_service.codes_by_id(session, {r.unit_id for r in receipts} | {notice.unit_id})
        issuer = units[notice.unit_id]
        names = "、".join(units[r.unit_id].name for r in receipts)
        text = f"：{names}" if len(names) <= UNITS_CHARACTERS else f"：{names[: UNITS_CHARACTERS - 1]}等"
        params = notice_service.page_params(notice, issuer, issuer) | {"count": len(receipts), "units": text}
        chase.alert(
            session, clock=clock, kind=notice_chase.OVERDUE, subject=f"{notice_id}:{receipts[0].id}", unit=issuer,
            role=notice_chase.DUTY_OFFICER, params=params, code=notice.code,
        )  # fmt: skip
        for r in receipts:
            r.issuer_told_at = now
            session.add(r)
    session.flush()
    return len(rows)
