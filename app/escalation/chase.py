"""One chase, many things to chase (ARCHITECTURE.md): a post owes an answer by a time.

Contract
--------
A *post* is a unit and a duty role (`duty_officer` or `leader`). A *chase* is one row of the `chase` table: the
post that owes an answer, what it owes it for (`kind` + `subject`, unique together), and a timer
(`next_step_at`). Each step pages the next rung of the post's *ladder*:

    the post's person → the unit's leader → the tier above's duty officer → its leader → … → the city's leader

(a chase that starts at a leader's post has no second rung). The rules, the same for every kind:

- A vacant post (nobody on duty, or an inactive person) falls through to the next rung at once, in the same
  step; the event "vacant" is recorded. Nothing is ever paged to nobody.
- When every rung from the post up to the city's leader was vacant, every admin (`admin`, `unit_admin`) of the
  post's unit and of the units above it is told (template `all_vacant`) and the event "all_vacant" is recorded.
- After a page the chase waits `window` for the answer, then takes the next rung. Past the city's leader it ends
  ("exhausted"). `window=None` is a one-shot alert: the first person found is paged and the chase ends ("done").
- An answer stops the chase. Push: the kind calls `answer()` when the answer arrives (same transaction as the
  answer itself). Pull: the kind's `answered(session, chases)` returns the ids of those answered; the tick asks
  it, in bulk, before taking their step. Reply: an SMS "1" / keypress to one of its pages, unless the kind says
  `replies=False`.
- A kind may supply its own `ladder(chain, role, chase) -> rungs` (e.g. leader → the tier above's duty officer →
  the city's duty officer); vacant rungs of it fall through the same way.
- Pages go through `app.notify.outbox` only: one INSERT per tick batch (an explicit `paging.Pager`), dedup keys
  `{prefix}:{subject}:{rung}:{person_id}:{channel}`, so a repeated step can never page twice. Each page's outbox
  `subject` is "chase:<id>", and carries the chase's `code`: a reply "1" or "1 <code>" answers the chase
  (`answer_page`, routed by app.notify.inbound.routed) and tells the kind's `on_answer`.
- Timers are rows: the escalation tick (`app.escalation.jobs.tick`) claims due chases with
  `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite: one writer), so replicas never take a step twice. A chase
  started due now wakes the tick at its commit (this process at once, other replicas via LISTEN/NOTIFY).
- Every event goes to `chase_event`, and to the kind's `note(session, chase, event, pager)` when it has one (its
  own timeline; in a tick batch `pager.later` writes its rows with the batch's).

Templates are names in `app.notify.templates.TEMPLATES` (add your kind's there). Each is rendered with the
kind's `params` over these defaults: `unit` (the post's unit name), `role` (the post's role), `to_unit` (the unit
of the person paged), `minutes` (the window in minutes; 0 for a one-shot). `all_vacant` also gets `text`, the
post's message as it would have read.

Usage
-----
    from datetime import timedelta
    from app.escalation import chase

    ROLLCALL = chase.register(chase.Kind(
        name="rollcall",                  # stored in chase.kind (at most 24 characters)
        dedup_prefix="rc",                # outbox dedup keys start with it
        templates=chase.Templates(post="rollcall_ask", leader="rollcall_leader", above="rollcall_above"),
        answered=None,                    # or a bulk check: (session, chases) -> set of chase ids answered
        note=None,                        # or (session, chase, event, pager) -> None: your own timeline
    ))

    # In the service that creates the entry, in its transaction (the tick pages, at once):
    chase.start(session, clock=clock, kind=ROLLCALL, subject=str(entry.id), unit=unit, role="duty_officer",
                params={"title": rollcall.title}, window=timedelta(minutes=5))
    # Due later instead, when the post was already asked by other means: at=deadline, page_post=False.
    # When the answer comes in, in the same transaction as the answer:
    chase.answer(session, clock=clock, kind=ROLLCALL, subject=str(entry.id), by="person:12")
    # A one-shot alert paged in the caller's transaction (a background job), with the same fall-through:
    chase.alert(session, clock=clock, kind=HEARTBEAT, subject=f"{name}:{since}", unit=city, role="duty_officer",
                params={...})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from app import labels
from app.clock import Clock
from app.db import insert_many_ignoring_conflicts, insert_unless_conflict
from app.errors import Invalid
from app.escalation import wake
from app.escalation.models import Chase, ChaseEvent, ChaseStatus
from app.escalation.paging import Pager
from app.notify import inbound, paging, templates
from app.notify.models import OutboxMessage
from app.org import units as unit_service
from app.org.models import Person, Role, Unit
from app.roster import service as roster_service

log = logging.getLogger("dutyline.chase")

SUBJECT = "chase"  # outbox subject of a chase's pages: "chase:<id>"
# Open chases, written out rather than bound so that PostgreSQL's plans match the partial index ix_chase_open_due
# (a prepared statement's generic plan cannot know a bound value).
OPEN = text("chase.status = 'open'")

DUTY_OFFICER = "duty_officer"
LEADER = "leader"
ADMIN_ROLES = (Role.admin.value, Role.unit_admin.value)
ROLE_LABEL = labels.DUTY_ROLES
Posts = dict[tuple[int, str], Person | None]
Rung = tuple[Unit, str]


@dataclass(frozen=True)
class Templates:
    post: str  # to the post's holder (rung 0)
    leader: str  # to the post unit's leader (rung 1)
    above: str  # to the tiers above (rungs 2 and on)
    all_vacant: str = "post_all_vacant"  # to the admins when the whole ladder is vacant
    voice: str | None = None  # read out on a call (a `voice_` template), when the kind calls at all


@dataclass(frozen=True)
class Event:
    kind: str  # page, vacant, all_vacant, exhausted, done, answered, cancelled
    at: datetime
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    name: str
    dedup_prefix: str
    templates: Templates
    answered: Callable[[Session, Sequence[Chase]], set[int]] | None = None
    # The kind's own record of an event (its timeline): (session, chase, event, pager). In a tick batch `pager` is
    # the batch's, whose `later` writes rows at its flush; outside one (an answer, a cancel) it is None.
    note: Callable[[Session, Chase, Event, Pager | None], None] | None = None
    on_answer: Callable[[Session, Chase, str], None] | None = None
    # The kind's own rungs (chain root first, the post's role, the chase) instead of the default `ladder`.
    ladder: Callable[[Sequence[Unit], str, Chase], list[Rung]] | None = None
    # False: an SMS reply or keypress never answers this kind (it is answered by something else, e.g. a fix).
    replies: bool = True
    # Whether a page (chase, rung, role) also calls (with `templates.voice`), e.g. leaders when asked for.
    calls: Callable[[Chase, int, str], bool] | None = None


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Make a kind known to the tick (its `answered` and `note`); registering the same name again replaces it."""
    if not kind.name or len(kind.name) > 24 or not kind.dedup_prefix or len(kind.dedup_prefix) > 24:
        raise ValueError("a kind's name and dedup prefix are 1 to 24 characters")
    names = [kind.templates.post, kind.templates.leader, kind.templates.above, kind.templates.all_vacant]
    for name in names + ([kind.templates.voice] if kind.templates.voice else []):
        if name not in templates.TEMPLATES:
            raise ValueError(f"unknown template {name!r}: add it to app.notify.templates.TEMPLATES")
    _KINDS[kind.name] = kind
    return kind


def ladder(chain: Sequence[Unit], role: str) -> list[Rung]:
    """The rungs for a post at the last unit of `chain` (root first): its role, its leader, then each unit above
    (duty officer, leader) up to the root."""
    *above, unit = chain
    rungs: list[Rung] = [(unit, role)]
    if role != LEADER:
        rungs.append((unit, LEADER))
    for upper in reversed(above):
        rungs += [(upper, DUTY_OFFICER), (upper, LEADER)]
    return rungs


def first_holder(rungs: Sequence[Rung], posts: Posts, start: int) -> tuple[int, Person | None, list[Rung]]:
    """From rung `start` upwards, the first rung whose post is held: (its index, the person, the vacant rungs
    passed). Past the top: (len(rungs), None, the vacant rungs)."""
    vacant: list[Rung] = []
    for index in range(start, len(rungs)):
        unit, role = rungs[index]
        person = posts.get((unit.id or 0, role))
        if person is not None:
            return index, person, vacant
        vacant.append((unit, role))
    return len(rungs), None, vacant


def admins_of(session: Session, chain: Sequence[Unit]) -> list[Person]:
    """Every active admin of these units (a post's unit and the units above it), by unit from the top."""
    ids = [u.id for u in chain if u.id is not None]
    rows = session.exec(select(Person).where(col(Person.unit_id).in_(ids), col(Person.active).is_(True))).all()
    order = {uid: i for i, uid in enumerate(ids)}
    found = [p for p in rows if set(p.roles) & set(ADMIN_ROLES)]
    return sorted(found, key=lambda p: (order.get(p.unit_id, 0), p.id or 0))


def start(
    session: Session,
    *,
    clock: Clock,
    kind: Kind,
    subject: str,
    unit: Unit,
    role: str,
    params: dict[str, Any],
    window: timedelta | None,
    at: datetime | None = None,
    page_post: bool = True,
    incident_id: int | None = None,
    code: str | None = None,
) -> Chase | None:
    """Start chasing `unit`'s `role` for `subject`: its first step is due `at` (default: now), and pages the post
    itself (`page_post`) or, when the kind already asked it, the next rung. None when this subject is chased
    already (a repeat changes nothing)."""
    now = clock.now()
    due = at or now
    row = _row(kind, subject, unit, role, params, window, due=due, now=now, page_post=page_post,
               incident_id=incident_id, code=code)  # fmt: skip
    new_id = insert_unless_conflict(session, Chase.__table__, row, on=("kind", "subject"))  # type: ignore[attr-defined]
    if new_id is None:
        return None
    if due <= now:
        wake.made_due(session)
    return session.get(Chase, new_id)


def _row(
    kind: Kind, subject: str, unit: Unit, role: str, params: dict[str, Any], window: timedelta | None, *,
    due: datetime, now: datetime, page_post: bool, incident_id: int | None, code: str | None,
) -> dict[str, Any]:  # fmt: skip
    """A chase row, checked."""
    if role not in ROLE_LABEL:
        raise ValueError(f"a chase starts at a duty post ({', '.join(ROLE_LABEL)}), not {role!r}")
    if not subject or len(subject) > 80:
        raise ValueError("a chase's subject is 1 to 80 characters")
    assert unit.id is not None
    return {
        "kind": kind.name,
        "subject": subject,
        "unit_id": unit.id,
        "role": role,
        "step": -1 if page_post else 0,
        "window_seconds": int(window.total_seconds()) if window is not None else None,
        "next_step_at": due,
        "status": ChaseStatus.open.value,
        "paged": 0,
        "dedup_prefix": kind.dedup_prefix,
        "post_template": kind.templates.post,
        "leader_template": kind.templates.leader,
        "above_template": kind.templates.above,
        "params": params,
        "incident_id": incident_id,
        "code": code,
        "created_at": now,
        "updated_at": now,
    }


def start_many(
    session: Session,
    *,
    clock: Clock,
    kind: Kind,
    items: Sequence[tuple[str, Unit, str, dict[str, Any]]],
    window: timedelta | None,
    code: str | None = None,
) -> int:
    """`start` for many posts at once, each due now and paging its own post first: one INSERT for all (a city-wide
    roll-call is 720 chases). (subject, unit, role, params) each; a subject chased already is left as it is. The
    number of rows given."""
    if not items:
        return 0
    now = clock.now()
    rows = [_row(kind, subject, unit, role, params, window, due=now, now=now, page_post=True, incident_id=None,
                 code=code) for subject, unit, role, params in items]  # fmt: skip
    insert_many_ignoring_conflicts(session, Chase.__table__, rows, on=("kind", "subject"))  # type: ignore[attr-defined]
    wake.made_due(session)
    return len(rows)


def _find(session: Session, kind: Kind, subject: str) -> Chase | None:
    query = select(Chase).where(Chase.kind == kind.name, Chase.subject == subject).with_for_update()
    return session.exec(query).first()


def answer(session: Session, *, clock: Clock, kind: Kind, subject: str, by: str) -> bool:
    """The answer came: the chase stops. True when this call stopped it (False: unknown, or already ended)."""
    chase = _find(session, kind, subject)
    if chase is None or chase.status != ChaseStatus.open:
        return False
    _stop(session, chase, status=ChaseStatus.answered, at=clock.now(), by=by)
    # The message is stored as written: it names who answered as a person reads them; `by` stays in the data.
    _event(session, kind, chase, Event("answered", clock.now(), f"{labels.actor(session, by)}已答复", {"by": by}))
    return True


def answer_page(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> inbound.AckOutcome:
    """A reply "1" (or a keypress) to one of a chase's pages (its subject "chase:<id>", routed here by
    app.notify.inbound.routed): the chase is answered by the person paged, the kind's `on_answer` is told, and the
    page is marked answered."""
    _answer(session, clock=clock, chase_id=int((page.subject or ":0").split(":", 1)[1]), person_id=page.person_id,
            via=via)  # fmt: skip
    return inbound.default_acknowledger(session, clock=clock, phone=phone, page=page, via=via)


def _answer(session: Session, *, clock: Clock, chase_id: int, person_id: int | None, via: str) -> bool:
    chase = session.exec(select(Chase).where(Chase.id == chase_id).with_for_update()).first()
    if chase is None or chase.status != ChaseStatus.open:
        return False
    kind = _KINDS.get(chase.kind)
    if kind is not None and not kind.replies:
        return False
    by = f"person:{person_id}" if person_id is not None else via
    _stop(session, chase, status=ChaseStatus.answered, at=clock.now(), by=by)
    who = labels.actor(session, by) if person_id is not None else ""
    message = f"{who}已答复（{labels.label('channels', via)}）"
    _event(session, kind, chase, Event("answered", clock.now(), message, {"by": by, "via": via}))
    if kind is not None and kind.on_answer is not None:
        kind.on_answer(session, chase, by)
    return True


def cancel(session: Session, *, clock: Clock, kind: Kind, subject: str, reason: str) -> bool:
    """The thing chased no longer needs an answer: no more steps. True when this call stopped it."""
    chase = _find(session, kind, subject)
    if chase is None or chase.status != ChaseStatus.open:
        return False
    _stop(session, chase, status=ChaseStatus.cancelled, at=clock.now())
    _event(session, kind, chase, Event("cancelled", clock.now(), f"已撤销：{reason}", {"reason": reason}))
    return True


def _stop(session: Session, chase: Chase, *, status: ChaseStatus, at: datetime, by: str | None = None) -> None:
    chase.status = status.value
    chase.next_step_at = None
    chase.updated_at = at
    if status == ChaseStatus.answered:
        chase.answered_at, chase.answered_by = at, (by or "")[:120]
    session.add(chase)


def alert(
    session: Session,
    *,
    clock: Clock,
    kind: Kind,
    subject: str,
    unit: Unit,
    role: str,
    params: dict[str, Any],
    incident_id: int | None = None,
    code: str | None = None,
    pager: Pager | None = None,
) -> Chase | None:
    """A one-shot alert to a post, paged now in the caller's transaction (a background job): the first person
    up the ladder who is on duty, or the admins when the whole ladder is vacant. None when `subject` was alerted
    already. With a `pager`, the page goes in at the caller's flush; without, at once."""
    chase = start(
        session,
        clock=clock,
        kind=kind,
        subject=subject,
        unit=unit,
        role=role,
        params=params,
        window=None,
        incident_id=incident_id,
        code=code,
    )
    if chase is None:
        return None
    own = pager if pager is not None else Pager(session)
    Stepper(session, clock, own).run([chase])
    if pager is None:
        own.flush()
    return chase


@dataclass
class StepResult:
    steps: int = 0
    answered: int = 0
    more: bool = False


def steps(session: Session, *, clock: Clock, pager: Pager, limit: int) -> StepResult:
    """The tick's part: take the next step of every due chase (up to `limit`), pages into `pager`."""
    now = clock.now()
    query = (
        select(Chase)
        .where(OPEN, col(Chase.next_step_at) <= now)
        .order_by(col(Chase.next_step_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    due = list(session.exec(query).all())
    result = StepResult(more=len(due) == limit)
    if not due:
        return result
    for name in {c.kind for c in due}:
        kind = _KINDS.get(name)
        if kind is None or kind.answered is None:
            continue
        mine = [c for c in due if c.kind == name]
        done = kind.answered(session, mine)
        for chase in mine:
            if chase.id in done:
                _stop(session, chase, status=ChaseStatus.answered, at=now, by=f"kind:{name}")
                _event(session, kind, chase, Event("answered", now, "已答复", {}))
                result.answered += 1
    left = [c for c in due if c.status == ChaseStatus.open]
    Stepper(session, clock, pager).run(left)
    result.steps = len(left)
    return result


class Stepper:
    """Takes one step of several chases, reading their units and who is on duty for all of them at once."""

    def __init__(self, session: Session, clock: Clock, pager: Pager) -> None:
        self.session, self.clock, self.pager = session, clock, pager
        self.now = clock.now()
        self._chains: dict[int, list[Unit]] = {}

    def run(self, chases: Sequence[Chase]) -> None:
        if not chases:
            return
        units = unit_service.codes_by_id(self.session, {c.unit_id for c in chases})
        codes = {code for u in units.values() for code in u.path.split("/")}
        by_code = {u.code: u for u in unit_service.by_codes(self.session, sorted(codes))}
        chains = {uid: [by_code[c] for c in u.path.split("/") if c in by_code] for uid, u in units.items()}
        self._chains = chains
        posts = roster_service.resolve_many(self.session, units=list(by_code.values()), at=self.now)
        by_id = {u.id: u for u in by_code.values()}
        paging.prepare(self.session, now=self.now, posts=[(by_id[uid], p) for (uid, _), p in posts.items()])
        for chase in chases:
            self._step(chase, chains[chase.unit_id], posts)

    def _step(self, chase: Chase, chain: list[Unit], posts: Posts) -> None:
        kind = _KINDS.get(chase.kind)
        rungs = kind.ladder(chain, chase.role, chase) if kind is not None and kind.ladder else ladder(chain, chase.role)
        index, person, vacant = first_holder(rungs, posts, chase.step + 1)
        for unit, role in vacant:
            self._event(kind, chase, "vacant", f"{unit.name}{ROLE_LABEL[role]}空岗，顺延", unit=unit.code, role=role)
        chase.step = index
        chase.updated_at = self.now
        self.session.add(chase)
        if person is None:
            chase.next_step_at = None
            if chase.paged == 0:
                self._tell_admins(kind, chase, chain)
                chase.status = ChaseStatus.all_vacant.value
            else:
                chase.status = ChaseStatus.exhausted.value
                self._event(kind, chase, "exhausted", "已通知至市级带班领导，仍未答复")
            return
        unit, role = rungs[index]
        template = chase.post_template if index == 0 else chase.leader_template if unit.id == chase.unit_id else None
        self._page(kind, chase, person, template or chase.above_template, unit=unit, role=role, rung=index)
        chase.paged += 1
        if chase.window_seconds is None:
            chase.status = ChaseStatus.done.value
            chase.next_step_at = None
        else:
            chase.next_step_at = self.now + timedelta(seconds=chase.window_seconds)

    def _params(self, chase: Chase, to_unit: Unit) -> dict[str, Any]:
        base = {
            "unit": self._chains[chase.unit_id][-1].name,
            "role": chase.role,
            "to_unit": to_unit.name,
            "minutes": (chase.window_seconds or 0) // 60,
        }
        return base | chase.params

    def _page(self, kind: Kind | None, chase: Chase, person: Person, template: str, *, unit: Unit, role: str,
              rung: int, params: dict[str, Any] | None = None, key: str | None = None) -> None:  # fmt: skip
        values = params if params is not None else self._params(chase, unit)
        label = ROLE_LABEL.get(role, "管理员")
        name, person_id = person.name, person.id
        # A call reads the post's own voice text; the admins told of a wholly vacant ladder (rung -1) are not the
        # post and its text has no parameters for them: past the SMS budget their telling stays in the console.
        voice = kind.templates.voice if kind is not None and rung >= 0 else None
        calls = bool(voice and kind is not None and kind.calls is not None and kind.calls(chase, rung, role))
        # The same path as an incident's pages: the day's SMS budget (a page owed an answer goes by voice past it,
        # an informational one stays in the console), the unit's group robots, a call when the kind asks for one.
        try:
            shaped = paging.shape(
                self.session, clock=self.clock, now=self.now, unit=unit, person=person, who=f"{label}{name}",
                template=template, params=values, voice=calls,
                voice_template=voice, needs_ack=kind is not None and kind.replies and chase.window_seconds is not None,
                digest=False, dedup_base=f"{chase.dedup_prefix}:{chase.subject}:{key or rung}:{person.id}"[:190],
                incident_id=chase.incident_id, incident_code=chase.code, tier=None, step=None,
                subject=f"{SUBJECT}:{chase.id}",
            )  # fmt: skip
        except Invalid as exc:
            # A text that cannot be written (a parameter missing) must not fail the tick: that would roll back
            # every other step of the batch, an incident's pages included, and fail again at every tick.
            log.error("chase %s (%s): page to %s not written: %s", chase.id, chase.kind, name, exc)
            self._event(kind, chase, "page_failed", f"通知{unit.name}{label}{name}的内容无法生成，未发送",
                        person_id=person_id, role=role, rung=rung, template=template, error=str(exc)[:200])  # fmt: skip
            return
        if not shaped.rows:
            self._event(kind, chase, "page_held", f"{unit.name}{label}{name}{shaped.note}", person_id=person_id,
                        role=role, rung=rung, template=template, **shaped.data)  # fmt: skip
            return

        def sent(channels: list[str]) -> None:
            self._event(kind, chase, "page", f"通知{unit.name}{label}{name}（{paging.shown(channels)}）{shaped.note}",
                        person_id=person_id, role=role, rung=rung, template=template, channels=channels,
                        **shaped.data)  # fmt: skip

        self.pager.add(shaped.rows, sent)

    def _tell_admins(self, kind: Kind | None, chase: Chase, chain: list[Unit]) -> None:
        admins = admins_of(self.session, chain)
        post = chain[-1]
        text = templates.render(chase.post_template, self._params(chase, post))
        params = {"unit": post.name, "role": chase.role, "text": text}
        template = kind.templates.all_vacant if kind else "post_all_vacant"
        self._event(kind, chase, "all_vacant", f"{post.name}{ROLE_LABEL[chase.role]}至市级各岗位均空岗，已告知管理员"
                    f"{'、'.join(p.name for p in admins) or '(无管理员)'}", admins=[p.id for p in admins])  # fmt: skip
        for admin in admins:
            self._page(kind, chase, admin, template, unit=post, role="admin", rung=-1, params=params, key="admins")

    def _event(self, kind: Kind | None, chase: Chase, what: str, message: str, **data: Any) -> None:
        _event(self.session, kind, chase, Event(what, self.now, message, data), pager=self.pager)


def _event(session: Session, kind: Kind | None, chase: Chase, event: Event, *, pager: Pager | None = None) -> None:
    assert chase.id is not None
    row: dict[str, Any] = {"chase_id": chase.id, "at": event.at, "kind": event.kind, "message": event.message[:500],
           "data": event.data or None}  # fmt: skip
    if pager is not None:
        pager.later(ChaseEvent.__table__, row)  # type: ignore[attr-defined]
    else:
        session.add(ChaseEvent(**row))
    if kind is not None and kind.note is not None:
        kind.note(session, chase, event, pager)
