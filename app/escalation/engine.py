"""The tier-by-tier escalation engine.

Each tier that must acknowledge has an IncidentTier row whose `next_step_at` is its timer. A step:
  0  page the tier's duty officer (and, for levels with `leader_at_once`, its leader too);
  1  page the leader and remind the duty officer;
  2  tell the tier above that this tier has not responded: it becomes required and starts at step 0;
     at the city, which has nobody above it, steps 2, 3, … page both posts again every window.
Whom to page is resolved from the roster at that moment. A vacant post is skipped at once and recorded.
Every page goes through the outbox with a dedup key (incident, tier, step, role, person, channel), so a
repeated step cannot page twice. Lock order, to stay free of deadlocks: incident row before tier rows,
and tier rows only upwards (street → district → city); the tick never locks an incident row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from app.clock import Clock
from app.escalation.grading import Severity
from app.escalation.rules import TIER_ORDER, LevelRule, RulesDocument
from app.incidents.models import Incident, IncidentTier, TimelineEntry
from app.notify import outbox
from app.org import units as unit_service
from app.org.models import Person, Tier, Unit
from app.roster import service as roster_service

DUTY_OFFICER = "duty_officer"
LEADER = "leader"
ROLE_LABEL = {DUTY_OFFICER: "值班员", LEADER: "带班领导"}
ENGINE_ACTOR = "system:escalation"


def note(
    session: Session,
    incident: Incident,
    *,
    at: datetime,
    kind: str,
    message: str,
    actor: str = ENGINE_ACTOR,
    tier: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Add an entry to the incident's timeline (in the caller's transaction)."""
    assert incident.id is not None
    entry = TimelineEntry(incident_id=incident.id, at=at, kind=kind, actor=actor, tier=tier, message=message, data=data)
    pending = session.info.get(_BATCH)
    if pending is not None:
        pending.append(entry)
    else:
        session.add(entry)
    return entry


@dataclass
class _Page:
    """A page waiting in a batch: its outbox rows by channel, and its timeline entry if any of them goes in."""

    rows: dict[str, dict[str, Any]]
    entry: Callable[[list[str]], TimelineEntry]
    own: list[str] = field(default_factory=list)  # the channels whose keys no earlier page of the batch took


_BATCH = "escalation.batch"


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """Write the pages of a unit of work (a tick's batch, an intake) together at its end: their outbox rows in
    one INSERT rather than one each. Timeline entries are held back too, so that they still go in in the order
    they were made, and a page's own entry only when one of its rows went in (a dedup key may exist)."""
    if _BATCH in session.info:  # nested: the outer scope writes
        yield
        return
    pending: list[TimelineEntry | _Page] = []
    session.info[_BATCH] = pending
    try:
        yield
    finally:
        session.info.pop(_BATCH, None)
    # Reached only when the block succeeded; after an exception the transaction is rolled back anyway.
    pages = [item for item in pending if isinstance(item, _Page)]
    claimed: set[str] = set()
    for page in pages:  # a dedup key that comes twice in the batch belongs to its first page
        page.own = [ch for ch, row in page.rows.items() if row["dedup_key"] not in claimed]
        claimed.update(page.rows[ch]["dedup_key"] for ch in page.own)
    written = outbox.enqueue_many(session, [page.rows[ch] for page in pages for ch in page.own])
    for item in pending:
        if isinstance(item, TimelineEntry):
            session.add(item)
            continue
        sent = [ch for ch in item.own if item.rows[ch]["dedup_key"] in written]
        if sent:
            session.add(item.entry(sent))


def tier_above(tier: str) -> Tier | None:
    index = TIER_ORDER.index(Tier(tier))
    return TIER_ORDER[index + 1] if index + 1 < len(TIER_ORDER) else None


@dataclass
class Context:
    """What one unit of escalation work needs: the incident, its rules, its chain of units, the time."""

    session: Session
    clock: Clock
    incident: Incident
    rules: RulesDocument
    units: dict[str, Unit]  # tier -> unit on the incident's chain
    now: datetime
    _on_duty: dict[tuple[int, str], Person | None] | None = None
    # The incident's tier rows, by tier, once apply_plan has read or written them.
    states: dict[str, IncidentTier] = field(default_factory=dict)

    @property
    def rule(self) -> LevelRule:
        return self.rules.level(Severity(self.incident.severity))

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.rule.ack_window_seconds)

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
            **extra,
        }

    def posts(self) -> dict[tuple[int, str], Person | None]:
        """Who holds each post of the chain now, by (unit id, role): resolved once per unit of work."""
        if self._on_duty is None:
            self._on_duty = roster_service.resolve_many(self.session, units=list(self.units.values()), at=self.now)
        return self._on_duty

    def share_posts(self, posts: dict[tuple[int, str], Person | None]) -> None:
        """Use posts already resolved at `now` for a batch of incidents (their chains' units included)."""
        self._on_duty = posts

    def on_duty(self, tier: str, role: str) -> Person | None:
        return self.posts().get((self.units[tier].id or 0, role))


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
    unit = ctx.units[state.tier]
    person = ctx.on_duty(state.tier, role)
    inc = ctx.incident
    if person is None:
        if record_vacancy:
            note(
                ctx.session,
                inc,
                at=ctx.now,
                kind="vacant",
                tier=state.tier,
                message=f"{unit.name}{ROLE_LABEL[role]}空岗,跳过",
                data={"role": role, "unit": unit.code, "step": state.step},
            )
        return None
    params = ctx.params(**extra)
    channels = {"sms": template, "voice": "voice_page"} if voice else {"sms": template}
    rows = {
        channel: outbox.message(
            clock=ctx.clock,
            channel=channel,
            to=person.phone,
            template=channel_template,
            params=params,
            dedup_key=f"inc:{inc.id}:{state.tier}:{notice or state.step}:{role}:{person.id}:{channel}",
            person_id=person.id,
            incident_id=inc.id,
            incident_code=inc.code,
            tier=state.tier,
            step=state.step,
        )
        for channel, channel_template in channels.items()
    }
    step, tier = state.step, state.tier

    def entry(sent: list[str]) -> TimelineEntry:
        assert inc.id is not None
        return TimelineEntry(
            incident_id=inc.id,
            at=ctx.now,
            kind="page",
            actor=ENGINE_ACTOR,
            tier=tier,
            message=f"通知{unit.name}{ROLE_LABEL[role]}{person.name}({'/'.join(sent)})",
            data={"role": role, "person_id": person.id, "step": step, "channels": sent, "template": template},
        )

    pending = ctx.session.info.get(_BATCH)
    if pending is not None:
        pending.append(_Page(rows, entry))
        return person
    # The incident row is written; pending tier rows need not be flushed for this INSERT (they are written
    # once, whole, at the end of the unit of work).
    with ctx.session.no_autoflush:
        written = outbox.enqueue_many(ctx.session, list(rows.values()))
    sent = [channel for channel, row in rows.items() if row["dedup_key"] in written]
    if sent:
        ctx.session.add(entry(sent))
    return person


def advance(ctx: Context, state: IncidentTier, *, escalated_from: str | None = None) -> None:
    """Take this tier's next step, skipping vacant posts at once, and set its timer."""
    while True:
        if state.acknowledged_at is not None:
            state.next_step_at = None
            return
        state.step += 1
        rule = ctx.rule
        if state.step == 0:
            if escalated_from is not None:
                officer = page(
                    ctx,
                    state,
                    role=DUTY_OFFICER,
                    template="tier_unresponsive",
                    **_unresponsive(ctx, escalated_from, state),
                )
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
            leader = page(ctx, state, role=LEADER, template=leader_template, voice=rule.voice_for_leaders)
            # A reminder to a post already found vacant at step 0 is not news: no second timeline entry.
            officer = page(ctx, state, role=DUTY_OFFICER, template="incident_reminder", record_vacancy=False)
            if officer is None and leader is None:
                continue
        else:
            above = tier_above(state.tier)
            if above is not None and above in ctx.units:
                escalate_to(ctx, above, because=state.tier)
                state.next_step_at = None
                return
            limit = ctx.rules.city_repeat_limit
            if limit is not None and state.step - 1 > limit:
                note(
                    ctx.session,
                    ctx.incident,
                    at=ctx.now,
                    kind="escalation_stopped",
                    tier=state.tier,
                    message=f"已重复通知{limit}次仍未签收,停止重复",
                )
                state.next_step_at = None
                return
            page(ctx, state, role=DUTY_OFFICER, template="incident_reminder")
            page(ctx, state, role=LEADER, template="incident_reminder", voice=rule.voice_for_leaders)
        state.next_step_at = ctx.now + ctx.window
        ctx.session.add(state)
        return


def escalate_to(
    ctx: Context, tier: Tier, *, because: str, manual_reason: str | None = None, actor: str = ENGINE_ACTOR
) -> IncidentTier:
    """The tier above is told that a tier has not responded (or a person escalated by hand): it must acknowledge."""
    state = ctx.session.exec(
        select(IncidentTier)
        .where(IncidentTier.incident_id == ctx.incident.id, IncidentTier.tier == tier)
        .with_for_update()
    ).one()
    lower = ctx.units.get(because)
    why = manual_reason or f"{lower.name if lower else because}未在时限内签收"
    note(
        ctx.session,
        ctx.incident,
        at=ctx.now,
        kind="escalated",
        tier=tier,
        actor=actor,
        message=f"升级至{ctx.units[tier].name}:{why}",
        data={"from": because, "reason": why},
    )
    if state.acknowledged_at is not None or (state.required and state.step >= 0):
        # Already acknowledged or already running its chain: tell its duty officer once about this tier.
        page(
            ctx,
            state,
            role=DUTY_OFFICER,
            template="tier_unresponsive",
            notice=f"from-{because}",
            **_unresponsive(ctx, because, state),
        )
        return state
    state.required = True
    state.informed = False
    state.required_at = ctx.now
    state.required_because = why[:200]
    advance(ctx, state, escalated_from=because)
    return state


def _unresponsive(ctx: Context, lower_tier: str, state: IncidentTier) -> dict[str, Any]:
    lower = ctx.units.get(lower_tier)
    return {
        "lower_unit": lower.name if lower else lower_tier,
        "minutes": max(1, round(ctx.window.total_seconds() / 60)),
        "unit": ctx.units[state.tier].name,
    }


def load_context(session: Session, *, clock: Clock, incident: Incident, rules: RulesDocument) -> Context:
    units = unit_service.by_codes(session, incident.unit_path.split("/"))
    return Context(
        session=session, clock=clock, incident=incident, rules=rules, units={u.tier: u for u in units}, now=clock.now()
    )


def plan(rules: RulesDocument, severity: Severity, *, sensitive: bool) -> tuple[Tier, set[Tier], set[Tier]]:
    """The lead tier, the tiers that must acknowledge and the tiers informed only, for a level."""
    rule = rules.level(severity)
    required = set(rule.must_acknowledge)
    informed = set(rule.informed) - required
    if sensitive and rules.sensitive_informs_city and Tier.city not in required:
        informed.add(Tier.city)
    return rule.lead_tier, required, informed


def lead_tier(ctx: Context) -> Tier:
    """The tier that leads the response at the incident's current level, on this incident's chain."""
    lead = plan(ctx.rules, Severity(ctx.incident.severity), sensitive=ctx.incident.sensitive)[0]
    if lead not in ctx.units:  # an incident placed at a district has no street tier
        lead = Tier.district if Tier.district in ctx.units else Tier.city
    return lead


def apply_plan(ctx: Context, *, reason: str, regraded: bool = False, new: bool = False) -> list[IncidentTier]:
    """Create or update the tier rows for the incident's current level; newly required tiers start now.

    A tier never stops being required once it was (a later, lower plan does not un-page anyone). After a
    rise (`regraded`), tiers still waiting on their duty officer get their leader at once if the new level says so.
    For a `new` incident there are no rows yet: they are written once, with their first step already taken.
    """
    inc = ctx.incident
    _, required, informed = plan(ctx.rules, Severity(inc.severity), sensitive=inc.sensitive)
    inc.lead_tier = lead_tier(ctx)
    existing: dict[str, IncidentTier] = {}
    if new:
        ctx.posts()  # read before any row is pending, so that nothing is flushed half-made
    else:
        query = select(IncidentTier).where(IncidentTier.incident_id == inc.id).with_for_update()
        existing = {s.tier: s for s in ctx.session.exec(query).all()}
    # Every tier of the chain gets its row first, so an escalation from a vacant lower tier finds its target.
    for tier in TIER_ORDER:
        unit = ctx.units.get(tier)
        if unit is not None and tier not in existing:
            assert inc.id is not None and unit.id is not None
            existing[tier] = IncidentTier(incident_id=inc.id, tier=tier, unit_id=unit.id)
            ctx.session.add(existing[tier])
    if not new:
        ctx.session.flush()
    started: list[IncidentTier] = []
    for tier in TIER_ORDER:
        state = existing.get(tier)
        if state is None:
            continue
        if tier in required and not state.required:
            state.required = True
            state.informed = False
            state.required_at = ctx.now
            state.required_because = reason[:200]
            if state.step < 0:
                advance(ctx, state)
            started.append(state)
        elif (
            state.required
            and state.acknowledged_at is None
            and state.step == 0
            and ctx.rule.leader_at_once
            and regraded
        ):
            # Re-graded to a level whose leaders are paged at once: a tier still waiting on its duty officer
            # gets its leader now rather than after the window.
            page(ctx, state, role=LEADER, template="incident_page", voice=ctx.rule.voice_for_leaders,
                 notice=f"regrade-{inc.severity}")  # fmt: skip
        elif tier in informed and not state.required and not state.informed:
            state.informed = True
            page(ctx, state, role=DUTY_OFFICER, template="incident_info", notice=f"info-{inc.severity}")
        ctx.session.add(state)
    ctx.states = existing
    if not new:  # a new incident's rows go in with the rest of its transaction, in one flush at the commit
        ctx.session.flush()
    return started
