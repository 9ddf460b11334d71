"""A person's duty as an iCalendar feed that calendar apps subscribe to.

Calendar apps cannot sign in, so the URL carries a token: an HMAC of the person id and a generation number under
an instance secret. Nothing secret is stored per person; rotating the link bumps the generation, which revokes
every URL handed out before.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlmodel import Session, col, select

from app import audit, labels
from app.auth import tokens
from app.auth.principal import Principal, authorize
from app.clock import Clock
from app.errors import NotFound
from app.org.models import Person, Unit
from app.roster import service as roster_service
from app.roster.models import CalendarFeed, Override, Rotation, Shift
from app.roster.schemas import CalendarLink
from app.roster.timeline import person_segments

PAST = timedelta(days=30)
AHEAD = timedelta(days=90)


def _generation(session: Session, person_id: int) -> int:
    row = session.get(CalendarFeed, person_id)
    return row.generation if row else 0


def token_for(session: Session, *, clock: Clock, person_id: int) -> str:
    secret = tokens.instance_secret(session, "calendar", clock=clock)
    message = f"{person_id}:{_generation(session, person_id)}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:40]


def _owner_or_admin(session: Session, actor: Principal, person_id: int) -> Person:
    person = session.get(Person, person_id)
    unit = session.get(Unit, person.unit_id) if person else None
    if person is None or unit is None or not actor.covers(unit):
        raise NotFound(f"no person with id {person_id}")
    if not (actor.kind == "person" and actor.id == person_id):
        authorize(actor, "rosters:write", unit)
    return person


def link(session: Session, *, clock: Clock, actor: Principal, person_id: int, base_url: str) -> CalendarLink:
    """The person's feed URL (for themselves or a roster admin over them)."""
    _owner_or_admin(session, actor, person_id)
    token = token_for(session, clock=clock, person_id=person_id)
    url = f"{base_url}/api/v1/people/{person_id}/calendar.ics?token={token}"
    return CalendarLink(person_id=person_id, url=url, token=token)


def rotate(session: Session, *, clock: Clock, actor: Principal, person_id: int, base_url: str) -> CalendarLink:
    """A new feed URL; the old one stops working."""
    person = _owner_or_admin(session, actor, person_id)
    row = session.get(CalendarFeed, person_id)
    if row is None:
        row = CalendarFeed(person_id=person_id, generation=0, updated_at=clock.now())
    row.generation += 1
    row.updated_at = clock.now()
    session.add(row)
    session.flush()
    unit = session.get(Unit, person.unit_id)
    audit.record(
        session,
        clock=clock,
        actor=actor,
        action="calendar.rotate",
        object_type="person",
        object_id=person_id,
        unit_path=unit.path if unit else None,
        after={"generation": row.generation},
    )
    return link(session, clock=clock, actor=actor, person_id=person_id, base_url=base_url)


def _units_of(session: Session, person_id: int, start: datetime, end: datetime) -> list[Unit]:
    ids: set[int] = set()
    for model in (Shift, Override):
        ids |= set(
            session.exec(
                select(model.unit_id).where(
                    model.person_id == person_id, col(model.starts_at) < end, col(model.ends_at) > start
                )
            )
        )
    for unit_id, participants in session.exec(
        select(Rotation.unit_id, Rotation.participants).where(
            (col(Rotation.ends_at).is_(None)) | (col(Rotation.ends_at) > start)
        )
    ):
        if person_id in participants:
            ids.add(unit_id)
    if not ids:
        return []
    return list(session.exec(select(Unit).where(col(Unit.id).in_(ids)).order_by(col(Unit.path))))


def feed(session: Session, *, clock: Clock, person_id: int, token: str) -> bytes:
    """The person's duty from 30 days ago to 90 days ahead, one event per continuous stretch."""
    person = session.get(Person, person_id)
    expected = token_for(session, clock=clock, person_id=person_id)
    # A wrong token looks like an unknown person: feed URLs are not to be probed.
    if person is None or not hmac.compare_digest(expected.encode(), token.encode()):
        raise NotFound(f"no calendar for person {person_id}")
    now = clock.now()
    start, end = now - PAST, now + AHEAD
    units = _units_of(session, person_id, start, end)
    lines = roster_service.timelines(session, units=units, start=start, end=end) if units else {}
    cal = Calendar()
    cal.add("prodid", "-//dutyline//duty roster//ZH")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"{person.name} 值班")
    cal.add("x-published-ttl", "PT1H")
    for unit in units:
        for (unit_id, role), segments in lines.items():
            if unit_id != unit.id:
                continue
            for s in person_segments(segments):
                if s.person_id != person_id:
                    continue
                event = Event()
                event.add("uid", f"{unit.code}-{role}-{int(s.start.timestamp())}-{person_id}@dutyline")
                event.add("summary", f"{labels.DUTY_ROLES.get(role, role)} · {unit.name}")
                event.add("dtstart", s.start)
                event.add("dtend", s.end)
                event.add("dtstamp", now)
                event.add("description", f"{unit.name} ({unit.code}) {role}; source: {s.source}")
                cal.add_component(event)
    body: bytes = cal.to_ical()
    return body
