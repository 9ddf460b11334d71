"""How one page to one person goes out: the SMS budget decides SMS, digest, voice or nothing, and the unit's
group robots get a post. The step machine calls `shape` and writes what it answers (see app.escalation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from app import labels
from app.clock import Clock
from app.notify import budget, outbox, templates
from app.notify import robots as robot_service
from app.org.models import Person, Unit
from app.roster.resolve import zone_of


@dataclass(frozen=True)
class Shaped:
    """The outbox rows of a page, keyed by channel (`sms`, `voice`, `robot:<id>`), and what the timeline says."""

    rows: dict[str, dict[str, Any]]
    plan: budget.Plan

    @property
    def note(self) -> str:
        """To append to the page's timeline message ("" when the budget changed nothing)."""
        return f"，{self.plan.note}" if self.plan.note else ""

    @property
    def data(self) -> dict[str, Any]:
        """To merge into the page's timeline data."""
        return {"budget": self.plan.kind, "sms_today": self.plan.sent_today} if self.plan.note else {}


def shown(channels: list[str]) -> str:
    """Channels as a timeline names them ("短信/电话/群机器人"): a unit's robots are one "群机器人"."""
    codes = dict.fromkeys(channel.partition(":")[0] for channel in channels)
    return "/".join(labels.label("channels", code) for code in codes)


def prepare(session: Session, *, now: datetime, posts: Iterable[tuple[Unit, Person | None]]) -> None:
    """Read in bulk what `shape` needs for every post a batch may page (each number's SMS today, each unit's
    robots): a few queries for the batch rather than two per page."""
    posts = list(posts)
    robot_service.preload(session, {unit.id for unit, _ in posts if unit.id is not None})
    by_zone: dict[ZoneInfo, set[str]] = {}
    for unit, person in posts:
        if person is not None:
            by_zone.setdefault(zone_of(unit), set()).add(person.phone)
    for zone, phones in by_zone.items():
        budget.preload(session, phones=phones, now=now, zone=zone)


def shape(
    session: Session,
    *,
    clock: Clock,
    now: datetime,
    unit: Unit,
    person: Person,
    who: str,
    template: str,
    params: dict[str, Any],
    voice: bool,
    dedup_base: str,
    incident_id: int | None,
    incident_code: str | None,
    tier: str | None,
    step: int | None,
    voice_template: str | None = "voice_page",
    needs_ack: bool | None = None,
    digest: bool = True,
    subject: str | None = None,
) -> Shaped:
    """The rows paging `person` with `template` (and a call with `voice_template` when `voice`), dedup keys
    `<dedup_base>:<channel>`. `needs_ack` (default: an incident page that asks for 签收) decides what happens past
    the day's SMS budget: a call with `voice_template` if there is one, else the console; `digest=False` sends
    the page itself where the budget's last SMS would be a digest of pending incidents. `subject` goes on every row
    (what a reply answers, e.g. "chase:12").

    No rows at all means the page stays in the console (over the budget, informational, no robots)."""
    assert person.id is not None
    channels = {"sms": template, "voice": voice_template} if voice and voice_template else {"sms": template}
    needs_ack = template in budget.NEEDS_ACK if needs_ack is None else needs_ack
    plan = budget.plan(session, phone=person.phone, now=now, zone=zone_of(unit), needs_ack=needs_ack)
    if plan.kind == "voice" and voice_template is None:
        plan = replace(plan, kind="console")
    sms_params = params
    if plan.kind == "digest" and not digest:
        plan = replace(plan, kind="sms")
    elif plan.kind == "digest":
        # An informational page with nothing pending is its own last SMS: a digest of nothing says nothing.
        codes = budget.pending_codes(session, person_id=person.id, also=incident_code if needs_ack else None)
        if codes:
            channels["sms"] = budget.DIGEST
            sms_params = params | budget.digest_params(codes)
        else:
            plan = replace(plan, kind="sms")
    elif plan.kind == "voice":
        assert voice_template is not None
        channels = {"voice": voice_template}
    elif plan.kind == "console":
        del channels["sms"]
    rows = {
        channel: outbox.message(
            clock=clock,
            channel=channel,
            to=person.phone,
            template=channel_template,
            # The digest keeps the page's parameters too: its voice fallback says the page.
            params=sms_params,
            dedup_key=f"{dedup_base}:{channel}",
            person_id=person.id,
            incident_id=incident_id,
            incident_code=incident_code,
            tier=tier,
            step=step,
            subject=subject,
        )
        for channel, channel_template in channels.items()
    }
    rows |= robot_service.page_rows(
        session,
        clock=clock,
        unit=unit,
        person=person,
        who=who,
        sms_text=templates.render(template, params),
        dedup_base=dedup_base,
        incident_id=incident_id,
        incident_code=incident_code,
        tier=tier,
        step=step,
    )
    return Shaped(rows, plan)
