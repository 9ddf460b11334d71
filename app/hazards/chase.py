"""The deadline chase of a hazard, on the one chase mechanism (app.escalation.chase); no step machine of its own.

For a deadline D (a local date) and N = DUTYLINE_HAZARD_ESCALATE_DAYS, at 09:00 in the unit's zone:
  D-3 and D-1   a reminder: a one-shot chase of the unit's duty officer (a vacant post falls through up the ladder),
                and from the same step an SMS to the responsible party's phone (a number, not a roster post);
  D+1           the unit's leader: an overdue chase that starts at the leader's post, N days per rung;
  D+1+N         the tier above's duty officer — or, for a hazard listed for supervision (挂牌督办), the listing unit's;
  D+1+2N        the city's duty officer (unless the listing unit is the city).
A hazard is answered by its rectification: submitted or closed stops its chases (pushed by `replan`, and pulled by
the tick as a safety net); an SMS reply never answers it. An extension or a failed verification plans the chase
anew: each (deadline, verification round) has subjects of its own, so earlier pages are never repeated, and a
reminder whose moment has passed is not sent late.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from app import labels
from app.clock import Clock
from app.escalation import chase as chase_service
from app.escalation.models import Chase, ChaseStatus
from app.escalation.paging import Pager
from app.hazards import service as hazard_service
from app.hazards.models import Hazard, HazardEntry, Status
from app.notify import outbox
from app.org.models import Unit
from app.roster.resolve import zone_of
from app.roster.timeline import wall_to_utc

STEP_TIME = time(9, 0)  # office hours: when a duty office would send these
REMINDER_DAYS = (3, 1)
ANSWERED = (Status.submitted, Status.closed)
ACTOR = "system:chase"
_LOADED = "hazards.chased"  # session.info: the hazards of the tick's batch, by id
_settings = {"escalate_days": 3}


def configure(*, escalate_days: int) -> None:
    """DUTYLINE_HAZARD_ESCALATE_DAYS, set once by the app (domain code does not read settings)."""
    _settings["escalate_days"] = escalate_days


def escalate_days() -> int:
    return _settings["escalate_days"]


def _hazard_id(chase: Chase) -> int:
    return int(chase.subject.split(":")[0])


def _answered(session: Session, chases: Sequence[Chase]) -> set[int]:
    """Chases whose hazard is submitted or closed, or whose round is over (a new deadline or verification round)."""
    # Whole rows, kept for the steps' timeline notes (`_note`): one query per batch, not one per step.
    hazards = session.exec(select(Hazard).where(col(Hazard.id).in_({_hazard_id(c) for c in chases}))).all()
    session.info.setdefault(_LOADED, {}).update({h.id: h for h in hazards})
    current = {h.id: (h.status, f"{h.deadline.isoformat()}:{h.failed_verifications}") for h in hazards}
    done = set()
    for c in chases:
        got = current.get(_hazard_id(c))
        _, deadline, round_ = c.subject.split(":")[:3]
        if got is None or got[0] in ANSWERED or f"{deadline}:{round_}" != got[1]:
            done.add(c.id or 0)
    return done


def _ladder(chain: Sequence[Unit], role: str, chase: Chase) -> list[tuple[Unit, str]]:
    """A reminder climbs like any post. An overdue hazard: the unit's leader, then the duty officer of the tier
    above (or of the listing unit), then the city's."""
    if chase.kind == REMINDER_KIND:
        return chase_service.ladder(chain, role)
    *above, unit = chain
    upper = list(reversed(above))  # nearest first
    listed = chase.params.get("listed_unit")
    if listed:
        target = next((u for u in upper if u.code == listed), None)
        if target is not None:
            upper = upper[upper.index(target) :]
    return [(unit, chase_service.LEADER), *((u, chase_service.DUTY_OFFICER) for u in upper)]


def _note(session: Session, chase: Chase, event: chase_service.Event, pager: Pager | None) -> None:
    """Every step on the hazard's timeline; a reminder's step also texts the responsible party."""
    if event.kind not in ("page", "vacant", "all_vacant", "exhausted"):
        return
    hazard = session.info.get(_LOADED, {}).get(_hazard_id(chase))
    if hazard is None:
        with session.no_autoflush:  # the batch's entries go in together at its flush, not one by one here
            hazard = session.get(Hazard, _hazard_id(chase))
    if hazard is None:
        return
    if chase.kind == REMINDER_KIND:
        kind, label = "reminder", "到期提醒"
    elif int(event.data.get("rung", chase.step) or 0) == 0:
        kind, label = "overdue", "逾期"
    else:
        kind, label = "escalated", "逾期上报"
    if event.kind != "page":
        kind = "exhausted" if event.kind == "exhausted" else "vacant"
    data = {"chase": chase.kind, "event": event.kind, **event.data}
    if pager is not None:  # a tick batch: the entry goes in with the batch's rows
        entry = hazard_service.entry_row(
            hazard, at=event.at, kind=kind, actor=ACTOR, message=f"{label}:{event.message}", data=data
        )
        pager.later(
            HazardEntry.__table__,  # type: ignore[attr-defined]
            entry,
        )
    else:
        hazard_service.note(
            session, hazard, at=event.at, kind=kind, actor=ACTOR, message=f"{label}:{event.message}", data=data
        )
    if chase.kind == REMINDER_KIND and event.kind in ("page", "all_vacant"):
        _text_responsible(session, chase, hazard, event.at, pager)


class _At:
    """The instant of the step, as a clock (outbox.message wants one)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def _text_responsible(session: Session, chase: Chase, hazard: Hazard, at: datetime, pager: Pager | None) -> None:
    row = outbox.message(
        clock=_At(at),
        channel="sms",
        to=hazard.responsible_phone,
        template="hazard_reminder",
        params={**chase.params, "unit": chase.params.get("unit_name", "")},
        dedup_key=f"{chase.dedup_prefix}:{chase.subject}:responsible:sms",
    )
    if outbox.enqueue(session, row) is not None:
        message = f"到期提醒：通知责任人{hazard.responsible_person}"
        if pager is not None:  # after the step's own entry, which waits in the batch too
            entry = hazard_service.entry_row(hazard, at=at, kind="reminder", actor=ACTOR, message=message,
                                             data={"to": "responsible"})  # fmt: skip
            pager.later(HazardEntry.__table__, entry)  # type: ignore[attr-defined]
        else:
            hazard_service.note(session, hazard, at=at, kind="reminder", actor=ACTOR, message=message,
                                data={"to": "responsible"})  # fmt: skip


REMINDER_KIND = "hazard_reminder"
REMINDER = chase_service.register(
    chase_service.Kind(
        name=REMINDER_KIND,
        dedup_prefix="hzr",
        templates=chase_service.Templates(post="hazard_reminder", leader="hazard_reminder", above="hazard_reminder"),
        answered=_answered,
        note=_note,
        ladder=_ladder,
        replies=False,
    )
)
OVERDUE = chase_service.register(
    chase_service.Kind(
        name="hazard_overdue",
        dedup_prefix="hzo",
        templates=chase_service.Templates(post="hazard_overdue", leader="hazard_overdue", above="hazard_escalated"),
        answered=_answered,
        note=_note,
        ladder=_ladder,
        replies=False,
    )
)
KINDS = {REMINDER.name: REMINDER, OVERDUE.name: OVERDUE}


def _at(day: date, unit: Unit) -> datetime:
    return wall_to_utc(datetime.combine(day, STEP_TIME), zone_of(unit))


def listed_code(hazard: Hazard) -> str | None:
    """The code of the unit a hazard is listed at (its own district, or its city), if it is listed."""
    if hazard.listed_tier is None:
        return None
    return hazard.unit_path.split("/")[0 if hazard.listed_tier == "city" else 1]


def _params(hazard: Hazard, unit: Unit, days: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "code": hazard.code,
        "venue": hazard.venue,
        "level": labels.label("hazard_levels", hazard.level),
        "deadline": hazard.deadline.strftime("%m-%d"),
        "unit_name": unit.name,
    }
    if days is not None:
        params["days"] = days
    listed = listed_code(hazard)
    if listed:
        params["listed_unit"] = listed
    return params


def _subject(hazard: Hazard, step: str) -> str:
    return f"{hazard.id}:{hazard.deadline.isoformat()}:{hazard.failed_verifications}:{step}"


def plan(session: Session, *, clock: Clock, hazard: Hazard, unit: Unit) -> None:
    """Plan the chase of a new hazard."""
    replan(session, clock=clock, hazard=hazard, unit=unit, fresh=True)


def plan_many(session: Session, *, clock: Clock, hazards: list[tuple[Hazard, Unit]]) -> None:
    """Plan the chases of many new hazards (an import)."""
    for hazard, unit in hazards:
        replan(session, clock=clock, hazard=hazard, unit=unit, fresh=True)


def replan(session: Session, *, clock: Clock, hazard: Hazard, unit: Unit, fresh: bool = False) -> None:
    """After any change: stop the chases that no longer apply, start the ones the hazard's state and deadline call
    for (a repeat start is a no-op), and carry a listing into the running overdue chase."""
    now = clock.now()
    wanted: dict[str, tuple[chase_service.Kind, dict[str, Any]]] = {}
    if hazard.status not in ANSWERED:
        for days in REMINDER_DAYS:
            at = _at(hazard.deadline - timedelta(days=days), unit)
            if at > now:
                wanted[_subject(hazard, f"r{days}")] = (REMINDER, {
                    "role": chase_service.DUTY_OFFICER, "params": _params(hazard, unit, days), "window": None,
                    "at": at})  # fmt: skip
        days = escalate_days()
        wanted[_subject(hazard, "o")] = (OVERDUE, {
            "role": chase_service.LEADER, "params": _params(hazard, unit), "window": timedelta(days=days),
            "at": max(now, _at(hazard.deadline + timedelta(days=1), unit))})  # fmt: skip
    running = [] if fresh else session.exec(
        select(Chase).where(
            col(Chase.kind).in_(list(KINDS)),
            col(Chase.subject).startswith(f"{hazard.id}:"),
            Chase.status == ChaseStatus.open.value,
        )
    ).all()  # fmt: skip
    for c in running:
        if c.subject not in wanted:
            chase_service.cancel(session, clock=clock, kind=KINDS[c.kind], subject=c.subject,
                                 reason="隐患已提交整改或期限已变")  # fmt: skip
        elif c.kind == OVERDUE.name and c.params.get("listed_unit") != listed_code(hazard):
            c.params = {**c.params, "listed_unit": listed_code(hazard)}
            session.add(c)
    known = {c.subject for c in running}
    for subject, (kind, spec) in wanted.items():
        if subject not in known:
            chase_service.start(session, clock=clock, kind=kind, subject=subject, unit=unit, code=None, **spec)
