"""How roll-call posts are chased, on the one step machine of app.escalation.chase.

Each entry is a chase whose ladder is the post, then (for a duty officer's post) the unit's own leader: at the
window an unanswered post is `missed` and its leader is paged; a vacant post falls through to its leader at once.
The chase does not climb the tiers above: the calling unit is the one to know, and its duty officer is told the
results once (app.rollcall.jobs), as a one-shot alert with the chase's fall-through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import String, cast, literal
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from app.clock import Clock
from app.escalation import chase
from app.escalation.models import Chase
from app.escalation.paging import Pager
from app.notify import outbox
from app.notify.models import OutboxMessage
from app.org.models import Person, Unit
from app.rollcall.models import EntryState, RollCall, RollCallEntry

DUTY_OFFICER, LEADER = "duty_officer", "leader"


def _ladder(chain: Sequence[Unit], role: str, _chase: Chase) -> list[chase.Rung]:
    unit = chain[-1]
    return [(unit, role), (unit, LEADER)] if role == DUTY_OFFICER else [(unit, role)]


def _note(session: Session, row: Chase, event: chase.Event, _pager: Pager | None) -> None:
    """Past the post's own rung (its leader paged, or nobody left to page) an entry still pending is missed."""
    past_post = (event.kind == "page" and int(event.data.get("rung", 0)) >= 1) or event.kind in (
        "exhausted", "all_vacant",
    )  # fmt: skip
    if row.kind != ROLLCALL.name or not past_post:
        return
    entry = session.get(RollCallEntry, int(row.subject))
    if entry is not None and entry.state == EntryState.pending:
        entry.state = EntryState.missed
        session.add(entry)


def _calls(row: Chase, rung: int, role: str) -> bool:
    """A leader's own post is also called when the roll-call asks for it (press 1 answers, as the SMS reply)."""
    return rung == 0 and role == LEADER and bool(row.params.get("voice_for_leaders"))


ROLLCALL = chase.register(
    chase.Kind(
        name="rollcall",
        dedup_prefix="rc",
        templates=chase.Templates(
            post="rollcall_page", leader="rollcall_missed", above="rollcall_missed", voice="voice_rollcall"
        ),
        note=_note,
        ladder=_ladder,
        calls=_calls,
    )
)
# The calling unit's duty officer told the results once the window has passed (app.rollcall.jobs): one SMS per
# roll-call, not one per post (a city-wide roll-call has 720 posts).
SUMMARY = chase.register(
    chase.Kind(
        name="rollcall_summary",
        dedup_prefix="rcs",
        templates=chase.Templates(post="rollcall_summary", leader="rollcall_summary", above="rollcall_summary"),
    )
)


def begin(
    session: Session,
    *,
    clock: Clock,
    rc: RollCall,
    caller: Unit,
    entries: list[tuple[int, Unit, str, Person | None]],
) -> None:
    """A chase per entry, due now: the tick pages every post at once (a vacant one's leader instead)."""
    window = timedelta(seconds=rc.answer_within_seconds)
    minutes = max(1, round(rc.answer_within_seconds / 60))
    items = []
    for entry_id, unit, role, person in entries:
        what = f"未在{minutes}分钟内应答" if person is not None else "空岗，无人值守"
        params: dict[str, Any] = {
            "caller": caller.name,
            "unit": unit.name,
            "role": role,
            "name": person.name if person is not None else "",
            "code": rc.code,
            "what": what,
        }
        if rc.voice_for_leaders and role == LEADER:
            params["voice_for_leaders"] = True
        items.append((str(entry_id), unit, role, params))
    chase.start_many(session, clock=clock, kind=ROLLCALL, items=items, window=window, code=rc.code)


def answered(session: Session, *, clock: Clock, entry: RollCallEntry, by: str, via: str) -> None:
    """The post answered: its chase stops, and its pages count as answered (a plain "1" goes elsewhere)."""
    chase.answer(session, clock=clock, kind=ROLLCALL, subject=str(entry.id), by=by)
    mark_pages_answered(session, clock=clock, kinds=[ROLLCALL], subjects=[str(entry.id)], via=via)


def of_page(session: Session, page: OutboxMessage) -> Chase | None:
    """The chase a page was sent for (its outbox subject is "chase:<id>")."""
    prefix, _, ident = (page.subject or "").partition(":")
    return session.get(Chase, int(ident)) if prefix == chase.SUBJECT and ident.isdigit() else None


def mark_pages_answered(
    session: Session, *, clock: Clock, kinds: Sequence[chase.Kind], subjects: Sequence[str], via: str
) -> None:
    """The pages of these chases count as answered, so a plain "1" from the phone goes to another page (one UPDATE:
    their pages' subjects are "chase:<id>")."""
    pages = sa_select(literal(f"{chase.SUBJECT}:", String) + cast(col(Chase.id), String)).where(
        col(Chase.kind).in_([k.name for k in kinds]), col(Chase.subject).in_(subjects)
    )
    outbox.mark_answered(session, clock=clock, subject=pages, via=via)
