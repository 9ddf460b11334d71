"""How receipts are chased, on the one step machine of app.escalation.chase.

Each receipt is a chase whose ladder is the receiving unit's duty officer, then its leader: when the leader's window
passes too, the receipt is `overdue`, and the issuer's duty officer is told (app.notices.jobs: one SMS per notice
for all the units overdue at that moment, not one per unit). A new version
of the notice (a CAP Update) is a new chase per receipt, the old one withdrawn; a cancelled notice withdraws them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session

from app.clock import Clock
from app.escalation import chase
from app.escalation.models import Chase
from app.escalation.paging import Pager
from app.notices.models import Notice, NoticeReceipt, ReceiptState
from app.org.models import Unit
from app.rollcall import chase as rollcall_chase

DUTY_OFFICER, LEADER = "duty_officer", "leader"


def subject(receipt_id: int, version: int) -> str:
    return f"{receipt_id}:v{version}"


def _ladder(chain: Sequence[Unit], role: str, _row: Chase) -> list[chase.Rung]:
    unit = chain[-1]
    return [(unit, role), (unit, LEADER)]


def _note(session: Session, row: Chase, event: chase.Event, _pager: Pager | None) -> None:
    """The leader's window passed too (or nobody was there to page): the receipt is overdue; the issuer's duty
    officer is told by app.notices.jobs."""
    if row.kind not in (NOTICE.name, UPDATE.name) or event.kind not in ("exhausted", "all_vacant"):
        return
    receipt = session.get(NoticeReceipt, int(row.subject.split(":")[0]))
    if receipt is not None and receipt.state == ReceiptState.pending:
        receipt.state = ReceiptState.overdue
        session.add(receipt)


_TEMPLATES = {"leader": "notice_reminder", "above": "notice_reminder"}
NOTICE = chase.register(
    chase.Kind(
        name="notice",
        dedup_prefix="nt",
        templates=chase.Templates(post="notice_page", **_TEMPLATES),
        note=_note,
        ladder=_ladder,
    )
)
# The issuer's duty officer told which units are overdue: one-shot, never answered.
OVERDUE = chase.register(
    chase.Kind(
        name="notice_overdue",
        dedup_prefix="nto",
        templates=chase.Templates(post="notice_overdue", leader="notice_overdue", above="notice_overdue"),
    )
)
# A withdrawn notice, told once to each receiving unit's duty officer (its leader if vacant): never answered.
CANCELLED = chase.register(
    chase.Kind(
        name="notice_cancel",
        dedup_prefix="ntc",
        templates=chase.Templates(post="notice_cancel", leader="notice_cancel", above="notice_cancel"),
    )
)
UPDATE = chase.register(
    chase.Kind(
        name="notice_update",
        dedup_prefix="ntu",
        templates=chase.Templates(post="notice_update", **_TEMPLATES),
        note=_note,
        ladder=_ladder,
    )
)


def begin(
    session: Session, *, clock: Clock, notice: Notice, issuer: Unit, receipts: Sequence[tuple[int, Unit]]
) -> None:
    """A chase per receipt, due now: the tick pages every receiving unit's duty officer at once."""
    kind = UPDATE if notice.version > 1 else NOTICE
    window = timedelta(seconds=notice.sign_within_seconds)
    from app.notices import service as notice_service  # the SMS wording lives with the notice

    items = [
        (subject(receipt_id, notice.version), unit, DUTY_OFFICER,
         notice_service.page_params(notice, issuer, unit) | {"issuer_id": issuer.id})
        for receipt_id, unit in receipts
    ]  # fmt: skip
    chase.start_many(session, clock=clock, kind=kind, items=items, window=window, code=notice.code)


def signed(session: Session, *, clock: Clock, notice: Notice, receipt: NoticeReceipt, by: str, via: str) -> None:
    """The unit signed: its chase stops and its pages count as answered."""
    assert receipt.id is not None
    mine = subject(receipt.id, notice.version)
    for kind in (NOTICE, UPDATE):
        chase.answer(session, clock=clock, kind=kind, subject=mine, by=by)
    rollcall_chase.mark_pages_answered(session, clock=clock, kinds=[NOTICE, UPDATE], subjects=[mine], via=via)


def withdraw(session: Session, *, clock: Clock, notice: Notice, receipts: Sequence[NoticeReceipt], reason: str) -> None:
    """The version these receipts were chased for no longer needs signing (an update came, or a cancellation)."""
    for receipt in receipts:
        assert receipt.id is not None
        for kind in (NOTICE, UPDATE):
            chase.cancel(session, clock=clock, kind=kind, subject=subject(receipt.id, notice.version), reason=reason)
    subjects = [subject(r.id or 0, notice.version) for r in receipts]
    rollcall_chase.mark_pages_answered(session, clock=clock, kinds=[NOTICE, UPDATE], subjects=subjects, via=reason[:16])


def tell_cancelled(
    session: Session, *, clock: Clock, notice: Notice, issuer: Unit, units: Sequence[tuple[int, Unit]]
) -> None:
    """Each receiving unit is told the notice is withdrawn (a one-shot page, falling through a vacant post)."""
    from app.notices import service as notice_service

    for receipt_id, unit in units:
        chase.alert(
            session, clock=clock, kind=CANCELLED, subject=str(receipt_id), unit=unit, role=DUTY_OFFICER,
            params=notice_service.page_params(notice, issuer, unit), code=notice.code,
        )  # fmt: skip
