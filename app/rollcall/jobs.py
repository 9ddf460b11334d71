"""Scheduled entry points of roll-calls: unannounced roll-calls at their drawn instants, and the calling unit told the
results once a roll-call's window has passed. Rows are claimed with row locks, so replicas never do either twice."""

from __future__ import annotations

from sqlmodel import Session, col, select

from app import labels
from app.clock import Clock
from app.escalation import chase
from app.org import units as unit_service
from app.org.models import Unit
from app.rollcall import chase as rollcall_chase
from app.rollcall import schedules, service, views
from app.rollcall.models import EntryState, RollCall

DETAIL_CHARACTERS = 60  # the names of the posts not answered, kept within two SMS segments


def _detail(missed: list[str]) -> str:
    if not missed:
        return "。全部在岗"
    text = "。未应答/空岗：" + "、".join(missed)
    return text if len(text) <= DETAIL_CHARACTERS else text[: DETAIL_CHARACTERS - 1] + "等"


def tell_callers(session: Session, *, clock: Clock, limit: int = 100) -> int:
    """Every roll-call whose window has passed: its calling unit's duty officer is told the results (a pending
    post counts as missed: the chase marks it at the same moment)."""
    now = clock.now()
    due = session.exec(
        select(RollCall)
        .where(col(RollCall.due_at) <= now, col(RollCall.told_at).is_(None))
        .order_by(col(RollCall.due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for rc in due:
        entries = service.entries(session, rc)
        units = unit_service.codes_by_id(session, {e.unit_id for e in entries} | {rc.unit_id})
        counts: dict[str, int] = {}
        missed = []
        for e in entries:
            state = EntryState.missed.value if e.state == EntryState.pending else e.state
            counts[state] = counts.get(state, 0) + 1
            if state in (EntryState.missed, EntryState.vacant):
                missed.append(f"{units[e.unit_id].name}{labels.DUTY_ROLES.get(e.role, e.role)}")
        s = views.summary(counts)
        caller: Unit = units[rc.unit_id]
        params = {
            "caller": caller.name, "code": rc.code, "posts": s.posts, "answered": s.answered, "missed": s.missed,
            "vacant": s.vacant, "detail": _detail(missed),
        }  # fmt: skip
        chase.alert(
            session, clock=clock, kind=rollcall_chase.SUMMARY, subject=str(rc.id), unit=caller,
            role=rollcall_chase.DUTY_OFFICER, params=params, code=rc.code,
        )  # fmt: skip
        rc.told_at = now
        session.add(rc)
    session.flush()
    return len(due)


def tick(session: Session, *, clock: Clock) -> int:
    """One pass of the roll-call timers (what the scheduler runs every few seconds)."""
    return schedules.due(session, clock=clock) + tell_callers(session, clock=clock)
