"""Roll-calls as the API and the console show them: entries with their people, and a summary."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from app.org import units as unit_service
from app.rollcall import service as rollcall_service
from app.rollcall.models import EntryState, RollCall, RollCallEntry, Scope
from app.rollcall.schemas import EntryPublic, RollCallDetail, RollCallPublic, Summary
from app.roster import service as roster_service


def summary(counts: dict[str, int]) -> Summary:
    posts = sum(counts.values())
    manned = posts - counts.get(EntryState.vacant, 0)
    answered = counts.get(EntryState.answered, 0)
    return Summary(
        posts=posts,
        answered=answered,
        missed=counts.get(EntryState.missed, 0),
        vacant=counts.get(EntryState.vacant, 0),
        pending=counts.get(EntryState.pending, 0),
        rate=round(answered / manned, 4) if manned else 0.0,
    )


def public_many(session: Session, rows: Sequence[RollCall]) -> list[RollCallPublic]:
    counts = rollcall_service.summaries(session, [r.id for r in rows if r.id is not None])
    units = unit_service.codes_by_id(session, {r.unit_id for r in rows})
    return [_public(r, units[r.unit_id].code, units[r.unit_id].name, summary(counts[r.id or 0])) for r in rows]


def _public(rc: RollCall, unit_code: str, unit_name: str, s: Summary) -> RollCallPublic:
    assert rc.id is not None
    return RollCallPublic(
        id=rc.id,
        code=rc.code,
        unit_code=unit_code,
        unit_name=unit_name,
        scope=Scope(rc.scope),
        roles=rc.roles,
        answer_within_seconds=rc.answer_within_seconds,
        voice_for_leaders=rc.voice_for_leaders,
        note=rc.note,
        started_at=rc.started_at,
        due_at=rc.due_at,
        started_by=rc.started_by,
        schedule_id=rc.schedule_id,
        summary=s,
    )


def detail(session: Session, rc: RollCall, entries: Sequence[RollCallEntry] | None = None) -> RollCallDetail:
    rows = list(entries) if entries is not None else rollcall_service.entries(session, rc)
    units = unit_service.codes_by_id(session, {e.unit_id for e in rows} | {rc.unit_id})
    people = roster_service.people_by_id(session, {e.person_id for e in rows if e.person_id is not None})
    counts: dict[str, int] = {}
    for e in rows:
        counts[e.state] = counts.get(e.state, 0) + 1
    base = _public(rc, units[rc.unit_id].code, units[rc.unit_id].name, summary(counts))
    return RollCallDetail(
        **base.model_dump(),
        entries=[
            EntryPublic(
                id=e.id or 0,
                unit_code=units[e.unit_id].code,
                unit_name=units[e.unit_id].name,
                role=e.role,
                person=roster_service.brief(people.get(e.person_id)) if e.person_id is not None else None,
                state=EntryState(e.state),
                answered_at=e.answered_at,
                channel=e.channel,
            )
            for e in rows
        ],
    )
