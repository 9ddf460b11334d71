"""One incident's chain as it happened (its review page, 复盘): each tier, who was paged when by which channel and
provider, who acknowledged when or that the tier was passed over, every report and whether it was late, and the
incident's own figures, computed by the same queries as the accountability report (app.reports.figures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.incidents import states as incident_states
from app.incidents.models import Incident, IncidentTier, Report, TimelineEntry
from app.notify.models import OutboxMessage
from app.org import units as unit_service
from app.org.models import TIER_ORDER, Person, Tier, Unit
from app.reports import figures, sql
from app.reports.schemas import IncidentFigures, TierFigures

# Channels that reach a person (webhooks reach agencies and are not part of the chain).
PERSON_CHANNELS = ("sms", "voice", "robot")
# Entries of the timeline that tell how the chain went, besides the pages.
CHAIN_KINDS = ("vacant", "all_vacant", "escalated", "late", "page_held", "escalation_stopped")


@dataclass(frozen=True)
class PageLine:
    at: datetime
    role: str
    person: str
    channel: str
    provider: str | None
    status: str
    step: int | None
    sent_at: datetime | None
    delivered_at: datetime | None
    acknowledged_at: datetime | None


@dataclass
class TierLine:
    tier: str
    unit: Unit
    state: IncidentTier
    first_page_at: datetime | None
    passed_over: bool
    pages: list[PageLine] = field(default_factory=list)
    events: list[TimelineEntry] = field(default_factory=list)

    @property
    def ack_seconds(self) -> float | None:
        ack = self.state.acknowledged_at
        if ack is None or self.first_page_at is None:
            return None
        return max(0.0, round((ack - self.first_page_at).total_seconds()))


@dataclass
class Review:
    incident: Incident
    tiers: list[TierLine]
    reports: list[Report]
    late_marks: list[TimelineEntry]
    incident_figures: IncidentFigures
    tier_figures: dict[str, TierFigures]


def _role_of(message: OutboxMessage) -> str:
    # The dedup key names the role: inc:<id>:<tier>:<step or notice>:<role>:<person>:<channel>.
    parts = message.dedup_key.split(":")
    return parts[4] if len(parts) >= 7 and parts[0] == "inc" else "duty_officer"


def review(session: Session, incident: Incident, *, now: datetime) -> Review:
    """The review of an incident the caller may read (the caller checks that)."""
    assert incident.id is not None
    states = {
        s.tier: s for s in session.exec(select(IncidentTier).where(IncidentTier.incident_id == incident.id)).all()
    }
    units = unit_service.codes_by_id(session, {s.unit_id for s in states.values()})
    entries = list(
        session.exec(
            select(TimelineEntry)
            .where(TimelineEntry.incident_id == incident.id)
            .order_by(col(TimelineEntry.at), col(TimelineEntry.id))
        ).all()
    )
    messages = list(
        session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.incident_id == incident.id, col(OutboxMessage.channel).in_(PERSON_CHANNELS))
            .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
        ).all()
    )
    people = {
        p.id: p
        for p in session.exec(select(Person).where(col(Person.id).in_({m.person_id for m in messages if m.person_id})))
    }
    lines: list[TierLine] = []
    for tier in TIER_ORDER:
        state = states.get(tier)
        if state is None:
            continue
        pages_at = [e.at for e in entries if e.kind == "page" and e.tier == tier]
        if state.required_at is not None:
            pages_at = [at for at in pages_at if at >= state.required_at]
        line = TierLine(
            tier=tier,
            unit=units[state.unit_id],
            state=state,
            first_page_at=min(pages_at) if state.required and pages_at else None,
            passed_over=incident_states.was_passed_over(state, list(states)),
        )
        for m in messages:
            if m.tier != tier:
                continue
            person = people.get(m.person_id)
            line.pages.append(
                PageLine(
                    at=m.created_at,
                    role=_role_of(m),
                    person=person.name if person else "—",
                    channel=m.channel,
                    provider=m.provider,
                    status=m.status,
                    step=m.step,
                    sent_at=m.sent_at,
                    delivered_at=m.delivered_at,
                    acknowledged_at=m.acknowledged_at,
                )
            )
        line.events = [e for e in entries if e.tier == tier and e.kind in CHAIN_KINDS]
        lines.append(line)
    reports = list(
        session.exec(select(Report).where(Report.incident_id == incident.id).order_by(col(Report.number))).all()
    )
    root = units.get(states[Tier.city].unit_id) if Tier.city in states else None
    root = root or unit_service.get(session, incident.unit_path.split("/")[0])
    scope = figures.Scope(
        root=root,
        start=incident.created_at,
        end=incident.created_at + timedelta(microseconds=1),
        now=now,
        dialect=session.get_bind().dialect.name,
        incident_id=incident.id,
    )
    group = sql.whole(root)
    found = figures.incidents(session, scope, [group])[0].get(root.code) or figures.empty_incidents()
    tiers = figures.tiers(session, scope, [group])[0].get(root.code) or figures.empty_tiers()
    return Review(
        incident=incident,
        tiers=lines,
        reports=reports,
        late_marks=[e for e in entries if e.kind == "late"],
        incident_figures=found,
        tier_figures=tiers,
    )
