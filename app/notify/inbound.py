"""What comes back from phones: SMS replies and keypresses that acknowledge (签收) a page.

A reply `1` acknowledges the newest pending page sent to that phone; `1 <code>` the page of that incident.
The acknowledgement itself goes through an injected `Acknowledger` (the app keeps it at
`app.state.acknowledger`): until incidents exist, the default one records it on the page rows; the
incidents package replaces it with the same function the console's ack button uses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import Session, col, or_, select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from app.clock import Clock
from app.notify import templates
from app.notify.models import Channel, OutboxMessage, Status

# A page counts as received once it left us; replies to it can arrive before its receipt does.
_OUT = (Status.sending.value, Status.sent.value, Status.delivered.value)
_REPLY = re.compile(r"^1\s*([A-Z0-9]{3,10})?$")


@dataclass(frozen=True)
class AckOutcome:
    """What an acknowledgement did, and what to answer: `reply` rendered (Twilio's TwiML answer), and the logical
    template with its parameters (a mainland provider sends only approved templates)."""

    ok: bool
    reply: str
    template: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def said(cls, ok: bool, template: str, params: dict[str, Any]) -> AckOutcome:
        return cls(ok=ok, reply=templates.render(template, params), template=template, params=params)


class Acknowledger(Protocol):
    def __call__(self, session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> AckOutcome: ...


def default_acknowledger(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> AckOutcome:
    """Until incidents exist: mark this page, and every other pending page of the same incident to this
    phone, acknowledged, and confirm with the incident code."""
    now = clock.now()
    if page.incident_id is not None:
        same_incident = col(OutboxMessage.incident_id) == page.incident_id
    else:
        same_incident = col(OutboxMessage.id) == page.id
    session.execute(
        update(OutboxMessage)
        .where(
            same_incident,
            col(OutboxMessage.recipient) == phone,
            col(OutboxMessage.acknowledged_at).is_(None),
        )
        .values(acknowledged_at=now, acknowledged_via=via)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.refresh(page)
    return AckOutcome.said(True, "ack_confirmed", {"code": page.incident_code or ""})


def routed(by_subject: Mapping[str, Acknowledger], default: Acknowledger) -> Acknowledger:
    """One acknowledger for every kind of page: a page about a subject ("rollcall:12") goes to that kind's answer,
    any other (an incident's) to `default`."""

    def acknowledge(session: Session, *, clock: Clock, phone: str, page: OutboxMessage, via: str) -> AckOutcome:
        kind = page.subject.split(":", 1)[0] if page.subject else None
        handler = by_subject.get(kind) if kind else None
        return (handler or default)(session, clock=clock, phone=phone, page=page, via=via)

    return acknowledge


@dataclass(frozen=True)
class Reply:
    """A parsed SMS reply: an acknowledgement (with an incident code or not), or something else."""

    ack: bool
    code: str | None = None


def parse_reply(text: str) -> Reply:
    # NFKC folds full-width digits and letters (１, Ｆ) into ASCII; replies are typed on Chinese keyboards.
    cleaned = unicodedata.normalize("NFKC", text or "").upper()
    cleaned = re.sub(r"[\s.。!]+$", "", re.sub(r"\s+", " ", cleaned).strip())
    match = _REPLY.match(cleaned)
    if match is None:
        return Reply(ack=False)
    return Reply(ack=True, code=match.group(1))


def pending_page(session: Session, *, phone: str, code: str | None = None) -> OutboxMessage | None:
    """The newest page to this phone not yet acknowledged (of that incident when a code is given)."""
    query = (
        select(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == Channel.sms.value,
            col(OutboxMessage.recipient) == phone,
            or_(col(OutboxMessage.incident_id).is_not(None), col(OutboxMessage.subject).is_not(None)),
            col(OutboxMessage.status).in_(_OUT),
            col(OutboxMessage.acknowledged_at).is_(None),
        )
        .order_by(col(OutboxMessage.created_at).desc(), col(OutboxMessage.id).desc())
    )
    if code is not None:
        query = query.where(OutboxMessage.incident_code == code)
    return session.exec(query.limit(1)).first()


def handle_sms(
    session: Session, *, clock: Clock, acknowledger: Acknowledger, phone: str, body: str
) -> tuple[AckOutcome | None, str]:
    """An inbound SMS: the acknowledgement it made (None if none) and the text to answer with."""
    reply = parse_reply(body)
    if not reply.ack:
        return None, templates.render("ack_help", {})
    page = pending_page(session, phone=phone, code=reply.code)
    if page is None:
        if reply.code is None:
            return None, templates.render("ack_nothing_pending", {})
        return None, templates.render("ack_unknown_code", {"code": reply.code})
    outcome = acknowledger(session, clock=clock, phone=phone, page=page, via=Channel.sms.value)
    return outcome, outcome.reply


def handle_keypress(
    session: Session, *, clock: Clock, acknowledger: Acknowledger, message_id: int, digits: str
) -> tuple[AckOutcome | None, str]:
    """A keypress during a voice page: 1 acknowledges that page's incident."""
    page = session.get(OutboxMessage, message_id)
    if page is None or page.channel != Channel.voice:
        return None, templates.render("voice_no_input", {})
    if parse_reply(digits).ack is False or parse_reply(digits).code is not None:
        return None, templates.render("voice_help", {})
    if page.acknowledged_at is not None:
        return None, templates.render("voice_ack_confirmed", {})
    outcome = acknowledger(session, clock=clock, phone=page.recipient, page=page, via=Channel.voice.value)
    return outcome, templates.render("voice_ack_confirmed", {}) if outcome.ok else outcome.reply


def valid_signature(tokens: Sequence[str], url: str, params: Mapping[str, Any], signature: str) -> bool:
    """Twilio's X-Twilio-Signature, checked against every configured auth token (for rotation)."""
    if not signature:
        return False
    return any(RequestValidator(token).validate(url, dict(params), signature) for token in tokens if token)


def messaging_twiml(text: str | None) -> str:
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


def answer_twiml(page: OutboxMessage | None, *, gather_url: str) -> str:
    """The call's script: the page read out in Chinese (twice), waiting for one key."""
    response = VoiceResponse()
    if page is None:
        response.say(templates.render("voice_no_input", {}), language="zh-CN")
        response.hangup()
        return str(response)
    gather = response.gather(num_digits=1, action=gather_url, method="POST", timeout=8)
    gather.say(page.body, language="zh-CN")
    gather.say(page.body, language="zh-CN")
    response.say(templates.render("voice_no_input", {}), language="zh-CN")
    return str(response)


def say_twiml(text: str) -> str:
    response = VoiceResponse()
    response.say(text, language="zh-CN")
    return str(response)
