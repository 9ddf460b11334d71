"""The step machine of an incident's tiers (the incident kind of "one chase", see app.escalation.chase).

Each tier of the incident's chain has an IncidentTier row; `next_step_at` is its timer. A step:
  0  page the tier's duty officer (and, for levels with `leader_at_once`, its leader too);
  1  page the leader and remind the duty officer;
  2  tell the tier above that this tier has not responded: it becomes required and starts at step 0;
     at the city, which has nobody above it, steps 2, 3, … page both posts again every window.
A vacant post falls through at once to the next step (the same ladder as every chase: duty officer → leader → the
tier above → … → the city's leader); when the city's posts are vacant too, every admin of the incident's unit and
above is told and the timeline says so. Nothing is paged to nobody.

Only the tick pages (app.escalation.jobs). Everything else (intake, re-grading, escalation by hand) changes state
and makes a step or a notice due now (`next_step_at`, `notices` + `notice_at`), and wakes the tick at its commit.
Every page goes through the outbox with a dedup key (incident, tier, step or notice, role, person, channel), so a
repeated step cannot page twice. Lock order, to stay free of deadlocks: incident row before tier rows, and tier
rows only upwards (street → district → city); the tick never locks an incident row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from app.clock import Clock
from app.escalation import chase, wake
from app.escalation.grading import Severity
from app.escalation.planning import plan
from app.escalation.rules import service as rules_service
from app.escalation.rules.schemas import LevelRule, RulesDocument
from app.incidents import timeline
from app.incidents.models import OPEN_STATUSES, Incident, IncidentTier
from app.notify import paging, templates
from app.org import units as unit_service
from app.org.models import TIER_ORDER, Person, Tier, Unit, tier_above
from app.roster import service as roster_service

DUTY_OFFICER = chase.DUTY_OFFICER
LEADER = chase.LEADER
ROLE_LABEL = chase.ROLE_LABEL
ACTOR = timeline.SYSTEM


class _Posts:
    """Who holds each post, resolved once for every chain of a batch, on first use (only the tick pages)."""

    def __init__(self, session: Session, units: Sequence[Unit], at: datetime) -> None:
        self.session, self.units, self.at = session, units, at
        self._found: dict[tuple[int, str], Person | None] | None = None

    def get(self) -> dict[tuple[int, str], Person | None]:
        if self._found is None:
            self._found = roster_service.resolve_many(self.session, units=list(self.units), at=self.at)
            by_id = {u.id: u for u in self.units}
            posts = [(by_id[unit_id], person) for (unit_id, _), person in self._found.items()]
            paging.prepare(self.session, now=self.at, posts=posts)
        return self._found


@dataclass
class Context:
    """What one incident's escalation work needs: the incident, its rules, its chain of units, the time, and (in
    the tick) the batch its pages and timeline entries go into."""

    session: Session
    clock: Clock
    incident: Incident
    rules: RulesDocument
    units: dict[str, Unit]  # tier -> unit on the incident's chain
    now: datetime
    _posts: _Posts
    batch: timeline.Batch | None = None
    states: dict[str, IncidentTier] = field(default_factory=dict)

    @property
    def rule(self) -> LevelRule:
        return self.rules.level(Severity(self.incident.severity))

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.rule.ack_window_seconds)

    @property
    def chain(self) -> list[Unit]:
        """The chain's units, root first."""
        return [self.units[t] for t in reversed(TIER_ORDER) if t in self.units]

    def params(self, **extra: Any) -> dict[str, Any]:
        """Template parameters every incident message shares (see app.notify.templates)."""
        inc = self.incident
        where = self.units.get(Tier.street) or self.units.get(Tier.district)
        return {
            "code": inc.code,
            "level": inc.severity,
            "category": inc.category,
            "title": inc.title,
            "unit": where.name if where else "",
            "address": inc.address,
            "casualties": {
                "deaths": inc.deaths,
                "injuries": inc.serious_injuries,
                "trapped": inc.trapped,
                "missing": inc.missing,
            },
            # The window this level's rule gives each step: what the text tells the reader to answer within.
            "window_seconds": self.rule.ack_window_seconds,
            **extra,
        }

    def on_duty(self, tier: str, role: str) -> Person | None:
        return self._posts.get().get((self.units[tier].id or 0, role))

    def note(self, *, kind: str, message: str, tier: str | None = None, actor: str = ACTOR,
             data: dict[str, Any] | None = None) -> None:  # fmt: skip
        if self.batch is not None:
            self.batch.note(self.incident, at=self.now, kind=kind, message=message, actor=actor, tier=tier, data=data)
        else:
            timeline.note(self.session, self.incident, at=self.now, kind=kind, message=message, actor=actor,
                          tier=tier, data=data)  # fmt: skip


def load_contexts(
    session: Session, clock: Clock, incidents: Sequence[Incident], *, batch: timeline.Batch | None = None
) -> dict[int, Context]:
    """The escalation context of each incident, sharing one read of their units, of their rules and (when
    anything pages) of who is on duty on every open incident's chain."""
    now = clock.now()
    codes = sorted({code for inc in incidents for code in inc.unit_path.split("/")})
    units = {u.code: u for u in unit_service.by_codes(session, codes)} if codes else {}
    chains = {inc.id: {units[c].tier: units[c] for c in inc.unit_path.split("/") if c in units} for inc in incidents}
    on_chains = {u.code: u for inc in incidents if inc.status in OPEN_STATUSES for u in chains[inc.id].values()}
    posts = _Posts(session, list(on_chains.values()), now)
    rules: dict[int, RulesDocument] = {}
    out: dict[int, Context] = {}
    for inc in incidents:
        assert inc.id is not None
        if inc.rules_version not in rules:
            rules[inc.rules_version] = rules_service.by_version(session, inc.rules_version)
        out[inc.id] = Context(session=session, clock=clock, incident=inc, rules=rules[inc.rules_version],
                              units=chains[inc.id], now=now, _posts=posts, batch=batch)  # fmt: skip
    return out


def new_context(
    session: Session, clock: Clock, incident: Incident, rules: RulesDocument, chain: Sequence[Unit]
) -> Context:
    """The context of an incident being written (its rules and chain already read by the caller)."""
    now = clock.now()
    return Context(session=session, clock=clock, incident=incident, rules=rules, units={u.tier: u for u in chain},
                   now=now, _posts=_Posts(session, chain, now))  # fmt: skip


def load_context(session: Session, clock: Clock, incident: Incident) -> Context:
    assert incident.id is not None
    return load_contexts(session, clock, [incident])[incident.id]


# --- making things due (outside the tick) ------------------------------------------------------------------------


def _notify_later(ctx: Context, state: IncidentTier, notice: dict[str, Any]) -> None:
    """Owe a page outside the step sequence: the tick sends it (at once when in the tick)."""
    if ctx.batch is not None:
        _send_notice(ctx, state, notice)
        return
    state.notices = [*(state.notices or []), notice]
    state.notice_at = ctx.now
    ctx.session.add(state)
    wake.made_due(ctx.session)


def _start(ctx: Context, state: IncidentTier, *, reason: str, escalated_from: str | None = None) -> None:
    """The tier must acknowledge from now: its first step is due now."""
    state.required = True
    state.informed = False
    state.required_at = ctx.now
    state.required_because = reason[:200]
    state.escalated_from = escalated_from
    if state.step < 0:
        if ctx.batch is not None:
            advance(ctx, state)
        else:
            state.next_step_at = ctx.now
            wake.made_due(ctx.session)
    ctx.session.add(state)


def new_tiers(ctx: Context, *, reason: str) -> list[IncidentTier]:
    """A new incident's tier rows, to be written with it: every tier of the chain, the required ones with their
    first step due now, the informed ones with their notice due now. No roster query, no page."""
    inc = ctx.incident
    p = plan(ctx.rules, Severity(inc.severity), sensitive=inc.sensitive, tiers=ctx.units.keys())
    inc.lead_tier = p.lead
    rows: list[IncidentTier] = []
    for tier in TIER_ORDER:
        unit = ctx.units.get(tier)
        if unit is None:
            continue
        assert inc.id is not None and unit.id is not None
        state = IncidentTier(incident_id=inc.id, tier=tier, unit_id=unit.id)
        if tier in p.required:
            state.required, state.required_at, state.required_because = True, ctx.now, reason[:200]
            state.next_step_at = ctx.now
        elif tier in p.informed:
            state.informed = True
            state.notices, state.notice_at = [_info_notice(inc)], ctx.now
        rows.append(state)
    ctx.states = {s.tier: s for s in rows}
    wake.made_due(ctx.session)
    return rows


def _info_notice(inc: Incident) -> dict[str, Any]:
    return {"key": f"info-{inc.severity}", "role": DUTY_OFFICER, "template": "incident_info"}


def apply_plan(ctx: Context, *, reason: str, regraded_from: Severity | None = None) -> list[IncidentTier]:
    """Bring the tier rows to the incident's current level: newly required tiers start now (their first step
    due); newly informed tiers get their notice. After a rise from `regraded_from`, every tier already involved
    is texted the new level (`_regrade_notices`). A tier never stops being required once it was."""
    inc = ctx.incident
    p = plan(ctx.rules, Severity(inc.severity), sensitive=inc.sensitive, tiers=ctx.units.keys())
    inc.lead_tier = p.lead
    query = select(IncidentTier).where(IncidentTier.incident_id == inc.id).with_for_update()
    existing = {s.tier: s for s in ctx.session.exec(query).all()}
    started: list[IncidentTier] = []
    for tier in TIER_ORDER:
        state = existing.get(tier)
        if state is None:
            continue
        if tier in p.required and not state.required:
            _start(ctx, state, reason=reason)  # its first page, due now, carries the new level
            started.append(state)
        elif tier in p.informed and not state.required and not state.informed:
            state.informed = True
            _notify_later(ctx, state, _info_notice(inc))
        elif regraded_from is not None:
            for notice in _regrade_notices(ctx, state, regraded_from):
                _notify_later(ctx, state, notice)
        ctx.session.add(state)
    ctx.states = existing
    return started


def _regrade_notices(ctx: Context, state: IncidentTier, old: Severity) -> list[dict[str, Any]]:
    """What a tier already involved is sent when the level rises from `old`: its duty officer (and its leader,
    once the leader was paged or the new level pages leaders at once) the new level, to sign if the tier has not
    signed yet. The tick sends them; the key names this regrade, so each post gets it once per regrade."""
    new = ctx.incident.severity
    if not (state.required and state.step >= 0) and not state.informed:
        return []  # not involved yet (a required tier whose first step is still due pages the new level itself)
    key = f"regrade-{old}-{new}-{int(ctx.now.timestamp())}"
    params: dict[str, Any] = {"old_level": str(old)}
    if state.acknowledged_at is not None or not state.required:
        return [{"key": key, "role": DUTY_OFFICER, "template": "incident_regraded_info", "params": params}]
    notices: list[dict[str, Any]] = [
        {"key": key, "role": DUTY_OFFICER, "template": "incident_regraded", "params": params}
    ]
    leader_paged = state.step >= 1 or ctx.rules.level(old).leader_at_once
    if leader_paged:
        notices.append({"key": key, "role": LEADER, "template": "incident_regraded", "params": params,
                        "voice": ctx.rule.voice_for_leaders})  # fmt: skip
    elif ctx.rule.leader_at_once:
        # Still waiting on its duty officer, and the new level pages leaders at once: the leader's first page
        # now rather than after the window.
        notices.append({"key": key, "role": LEADER, "template": "incident_page", "voice": ctx.rule.voice_for_leaders})
    return notices


def escalate_to(
    ctx: Context, tier: Tier, *, because: str, manual_reason: str | None = None, actor: str = ACTOR
) -> IncidentTier:
    """The tier above is told that a tier has not responded (or a person escalated by hand): it must acknowledge."""
    state = ctx.session.exec(
        select(IncidentTier)
        .where(IncidentTier.incident_id == ctx.incident.id, IncidentTier.tier == tier)
        .with_for_update()
    ).one()
    why = manual_reason or _auto_reason(ctx, because)
    ctx.note(kind="escalated", tier=tier, actor=actor, message=f"升级至{ctx.units[tier].name}：{why}",
             data={"from": because, "reason": why})  # fmt: skip
    if state.acknowledged_at is not None or (state.required and state.step >= 0):
        # Already acknowledged or already running its chain: tell its duty officer once about this tier.
        _notify_later(ctx, state, {"key": f"from-{because}", "role": DUTY_OFFICER, "template": "tier_unresponsive",
                                   "lower": because, "manual": manual_reason is not None})  # fmt: skip
        return state
    _start(ctx, state, reason=why, escalated_from=because)
    return state


# --- the tick: paging ----------------------------------------------------------------------------------------------


def take(ctx: Context, state: IncidentTier) -> bool:
    """The tick's work on one claimed tier row: its notices owed, then its step if due. True if a step was taken."""
    assert ctx.batch is not None, "only the tick pages"
    if state.notices:
        for notice in state.notices:
            _send_notice(ctx, state, notice)
        state.notices, state.notice_at = None, None
        ctx.session.add(state)
    if state.next_step_at is None or state.next_step_at > ctx.now:
        return False
    if ctx.incident.status not in OPEN_STATUSES or not state.required:
        state.next_step_at = None
        ctx.session.add(state)
        return False
    advance(ctx, state)
    ctx.session.add(state)
    return True


def _send_notice(ctx: Context, state: IncidentTier, notice: dict[str, Any]) -> None:
    if ctx.incident.status not in OPEN_STATUSES:
        return
    extra = _unresponsive(ctx, notice["lower"], state, manual=notice.get("manual")) if notice.get("lower") else {}
    page(ctx, state, role=notice["role"], template=notice["template"], voice=bool(notice.get("voice")),
         notice=notice["key"], **extra, **notice.get("params", {}))  # fmt: skip


def page(
    ctx: Context,
    state: IncidentTier,
    *,
    role: str,
    template: str,
    voice: bool = False,
    notice: str | None = None,
    record_vacancy: bool = True,
    **extra: Any,
) -> Person | None:
    """Page whoever holds `role` at this tier now; None (and a timeline entry) when the post is vacant.

    The dedup key names the step, or `notice` for a page outside the tier's own chain.
    """
    assert ctx.batch is not None, "only the tick pages"
    unit = ctx.units[state.tier]
    person = ctx.on_duty(state.tier, role)
    if person is None:
        if record_vacancy:
            ctx.note(kind="vacant", tier=state.tier, message=f"{unit.name}{ROLE_LABEL[role]}空岗，顺延",
                     data={"role": role, "unit": unit.code, "step": state.step})  # fmt: skip
        return None
    _page_person(ctx, state, person, role=role, template=template, voice=voice, key=notice or str(state.step),
                 params=ctx.params(tier_unit=unit.name, **extra))  # fmt: skip
    return person


def _page_person(ctx: Context, state: IncidentTier, person: Person, *, role: str, template: str, voice: bool,
                 key: str, params: dict[str, Any]) -> None:  # fmt: skip
    assert ctx.batch is not None
    inc, unit = ctx.incident, ctx.units[state.tier]
    label = ROLE_LABEL.get(role, "管理员")
    shaped = paging.shape(ctx.session, clock=ctx.clock, now=ctx.now, unit=unit, person=person,
                          who=f"{label}{person.name}", template=template, params=params, voice=voice,
                          dedup_base=f"inc:{inc.id}:{state.tier}:{key}:{role}:{person.id}", incident_id=inc.id,
                          incident_code=inc.code, tier=state.tier, step=state.step)  # fmt: skip
    rows = shaped.rows
    step, tier, now = state.step, state.tier, ctx.now
    if not rows:  # over the day's SMS budget, informational, and no group to post to: it stays in the console
        held = {"role": role, "person_id": person.id, "step": step, "template": template} | shaped.data
        ctx.note(kind="page_held", tier=tier, message=f"{unit.name}{label}{person.name}{shaped.note}", data=held)
        return

    def record(sent: list[str]) -> dict[str, Any]:
        return timeline.row(inc, at=now, kind="page", tier=tier,
                              message=f"通知{unit.name}{label}{person.name}（{paging.shown(sent)}）{shaped.note}",
                              data={"role": role, "person_id": person.id, "step": step, "channels": sent,
                                    "template": template} | shaped.data)  # fmt: skip

    ctx.batch.page(rows, record)


def _tell_admins(ctx: Context, state: IncidentTier) -> None:
    """The whole chain up to the city is vacant at this step: every admin of the incident's unit and above."""
    admins = chase.admins_of(ctx.session, ctx.chain)
    names = "、".join(p.name for p in admins) or "（无管理员）"
    top = ctx.units[state.tier].name
    ctx.note(kind="all_vacant", tier=state.tier, message=f"至{top}各级值守岗位均空岗，已告知管理员{names}",
             data={"admins": [p.id for p in admins], "step": state.step})  # fmt: skip
    for admin in admins:
        _page_person(ctx, state, admin, role="admin", template="incident_page", voice=False, key="admins",
                     params=ctx.params(tier_unit=top))  # fmt: skip


def advance(ctx: Context, state: IncidentTier) -> None:
    """Take this tier's next step, falling through vacant posts at once, and set its timer."""
    escalated_from = state.escalated_from if state.step < 0 else None
    while True:
        if state.acknowledged_at is not None:
            state.next_step_at = None
            return
        state.step += 1
        rule = ctx.rule
        if state.step == 0:
            if escalated_from is not None:
                officer = page(ctx, state, role=DUTY_OFFICER, template="tier_unresponsive",
                               **_unresponsive(ctx, escalated_from, state))  # fmt: skip
            else:
                officer = page(ctx, state, role=DUTY_OFFICER, template="incident_page")
            leader = None
            if rule.leader_at_once:
                leader = page(ctx, state, role=LEADER, template="incident_page", voice=rule.voice_for_leaders)
            if officer is None and leader is None:
                continue
        elif state.step == 1:
            # A leader already paged at step 0 gets a reminder; otherwise this is the leader's first page.
            leader_template = "incident_reminder" if rule.leader_at_once else "incident_page"
            leader = page(ctx, state, role=LEADER, template=leader_template, voice=rule.voice_for_leaders,
                          record_vacancy=not rule.leader_at_once)  # fmt: skip
            # A reminder to a post already found vacant at step 0 is not news: no second timeline entry.
            officer = page(ctx, state, role=DUTY_OFFICER, template="incident_reminder", record_vacancy=False)
            if officer is None and leader is None:
                continue
        else:
            above = tier_above(state.tier)
            if above is not None and above in ctx.units:
                target = escalate_to(ctx, above, because=state.tier)
                state.next_step_at = None
                ctx.session.add(target)
                return
            limit = ctx.rules.city_repeat_limit
            if limit is not None and state.step - 1 > limit:
                ctx.note(kind="escalation_stopped", tier=state.tier, message=f"已重复通知{limit}次仍未签收，停止重复")
                state.next_step_at = None
                return
            officer = page(ctx, state, role=DUTY_OFFICER, template="incident_reminder", record_vacancy=False)
            leader = page(ctx, state, role=LEADER, template="incident_reminder", voice=rule.voice_for_leaders,
                          record_vacancy=False)  # fmt: skip
            if officer is None and leader is None and state.step == 2:
                _tell_admins(ctx, state)  # the top of the chain is vacant: nothing is paged to nobody
        state.next_step_at = ctx.now + ctx.window
        ctx.session.add(state)
        return


def _auto_reason(ctx: Context, lower_tier: str) -> str:
    lower = ctx.units.get(lower_tier)
    return f"{lower.name if lower else lower_tier}未在时限内签收"


def _unresponsive(ctx: Context, lower_tier: str, state: IncidentTier, *, manual: bool | None = None) -> dict[str, Any]:
    """What the tier above is told about the lower tier: how long it has gone unsigned since it had to sign (its
    whole wait, every step's window, not one window), or that someone escalated by hand."""
    lower = ctx.units.get(lower_tier)
    if manual is None:
        manual = bool(state.required_because) and state.required_because != _auto_reason(ctx, lower_tier)
    why = "申请上级处置"
    if not manual:
        below = ctx.session.exec(
            select(IncidentTier).where(IncidentTier.incident_id == ctx.incident.id, IncidentTier.tier == lower_tier)
        ).first()
        since = below.required_at if below is not None and below.required_at is not None else ctx.now - ctx.window
        waited = 60 * max(1, round((ctx.now - since).total_seconds() / 60))  # whole minutes: the tick is seconds late
        why = f"{templates.duration(waited)}未签收"
    return {"lower_unit": lower.name if lower else lower_tier, "why": why}


def claim_due(session: Session, *, now: datetime, limit: int) -> list[IncidentTier]:
    """Due tier rows across incidents (a step or a notice), gravest level first, locked (SKIP LOCKED)."""
    due = (col(IncidentTier.next_step_at) <= now) | (col(IncidentTier.notice_at) <= now)
    query = (
        select(IncidentTier)
        .join(Incident, col(Incident.id) == col(IncidentTier.incident_id))
        .where(due)
        # "I" < "II" < "III" < "IV": the gravest first, then the longest waiting.
        .order_by(col(Incident.severity), col(IncidentTier.next_step_at))
        .limit(limit)
        .with_for_update(skip_locked=True, of=IncidentTier)
    )
    return list(session.exec(query).all())
