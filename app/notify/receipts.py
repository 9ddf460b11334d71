"""Receipts and replies pushed by Alibaba Cloud and Tencent Cloud (PRODUCT.md §8), applied once each.

The pushes are JSON arrays, sometimes repeated; they are not signed by the providers, so the router checks
the per-installation token in the path first. A whole push is validated before any item is applied
(malformed: an Invalid naming the item and field, nothing written). Each item is applied once, by its natural
key in `provider_push` (a repeat is skipped). A receipt found only by the provider's id (Tencent's names nothing
else) that no row carries yet is held (`held_receipt`) and applied once the dispatcher records that id
(`release`); one still unmatched after a day is dropped. Any other item for a message we do not know is ignored and
returned in `PushResult.unknown` for the metric. Replies go to the same acknowledgement as Twilio's (sender number plus
short code); the confirmation goes back as an SMS through the outbox, along the number's route.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.clock import Clock
from app.db import insert_unless_conflict
from app.errors import FieldError, Invalid
from app.notify import delivery, inbound, outbox
from app.notify.delivery import DeliveryEvent, Observer
from app.notify.inbound import Acknowledger
from app.notify.models import FINAL, Channel, ErrorClass, HeldReceipt, OutboxMessage, ProviderPush, Status

_PUSH = ProviderPush.__table__  # type: ignore[attr-defined]
# How long a receipt waits for its send to be recorded (the send's answer is seconds away, or it was never ours).
HOLD_FOR = timedelta(days=1)


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class AliyunSmsReport(_Item):
    phone_number: str
    success: bool
    biz_id: str
    out_id: str = ""
    err_code: str = ""
    err_msg: str = ""
    report_time: str = ""


class AliyunSmsUp(_Item):
    phone_number: str
    content: str
    send_time: str = ""
    sign_name: str = ""
    dest_code: str = ""
    sequence_id: str = ""


class AliyunVoiceReport(_Item):
    call_id: str
    status_code: str
    out_id: str = ""
    dtmf: str = ""
    status_msg: str = ""


class TencentSmsStatus(_Item):
    mobile: str
    report_status: str
    sid: str
    nationcode: str = "86"
    errmsg: str = ""
    description: str = ""
    user_receive_time: str = ""


class TencentSmsReply(_Item):
    mobile: str
    text: str
    nationcode: str = "86"
    sign: str = ""
    time: str = ""
    extend: str = ""


@dataclass
class PushResult:
    applied: int = 0
    repeated: int = 0
    unknown: int = 0
    held: int = 0
    events: list[DeliveryEvent] = field(default_factory=list)


KINDS: dict[tuple[str, str], type[_Item]] = {
    ("aliyun", "sms-report"): AliyunSmsReport,
    ("aliyun", "sms-up"): AliyunSmsUp,
    ("aliyun", "voice-report"): AliyunVoiceReport,
    ("tencent", "sms-status"): TencentSmsStatus,
    ("tencent", "sms-reply"): TencentSmsReply,
}


def parse(provider: str, kind: str, payload: Any) -> list[_Item]:
    """The push's items, every one valid, or an Invalid naming the first bad ones (nothing is applied)."""
    model = KINDS[(provider, kind)]
    if isinstance(payload, dict) and kind == "sms-reply":
        payload = [payload]  # Tencent documents its reply push as one object; accept both
    if not isinstance(payload, list):
        raise Invalid.field("body", "must be a JSON array of objects")
    if len(payload) > 1000:
        raise Invalid.field("body", "at most 1000 items per push")
    items: list[_Item] = []
    errors: list[FieldError] = []
    for i, raw in enumerate(payload):
        try:
            items.append(model.model_validate(raw))
        except ValidationError as exc:
            errors += [FieldError(f"[{i}]." + ".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
    if errors:
        raise Invalid("malformed push: " + "; ".join(f"{e.field}: {e.message}" for e in errors[:5]), fields=errors)
    return items


def _first_time(session: Session, clock: Clock, provider: str, kind: str, key: str) -> bool:
    digest = key if len(key) <= 160 else hashlib.sha256(key.encode()).hexdigest()
    row = {"key": f"{provider}:{kind}:{digest}", "provider": provider, "kind": kind, "received_at": clock.now()}
    return insert_unless_conflict(session, _PUSH, row, on=("key",)) is not None


def _our_id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 16 else None


def _status(
    session: Session,
    clock: Clock,
    result: PushResult,
    *,
    provider: str,
    provider_id: str,
    status: str,
    message_id: int | None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> OutboxMessage | None:
    row = session.get(OutboxMessage, message_id) if message_id is not None else None
    before = row.status if row is not None else None
    updated = outbox.apply_provider_status(
        session,
        clock=clock,
        provider_id=provider_id,
        provider_status=status,
        message_id=message_id,
        error_code=error_code,
        error_message=error_message,
    )
    if updated is None:
        if message_id is None and provider_id:
            _hold(session, clock, provider, provider_id, status, error_code, error_message)
            result.held += 1
        else:
            result.unknown += 1
        return None
    result.applied += 1
    if updated.provider is None:
        updated.provider = provider
        session.add(updated)
    if updated.status in (Status.failed, Status.undelivered) and before not in FINAL and updated.id is not None:
        result.events.append(
            DeliveryEvent(
                "failed",
                updated.id,
                updated.channel,
                provider,
                ErrorClass.permanent.value,
                updated.last_error or status,
            )
        )
    return updated


def _hold(
    session: Session,
    clock: Clock,
    provider: str,
    provider_id: str,
    status: str,
    error_code: str | None,
    error_message: str | None,
) -> None:
    now = clock.now()
    session.execute(delete(HeldReceipt).where(col(HeldReceipt.received_at) < now - HOLD_FOR))
    held = HeldReceipt(
        provider=provider,
        provider_id=provider_id[:64],
        status=status[:32],
        error_code=error_code[:64] if error_code else None,
        error_message=error_message[:200] if error_message else None,
        received_at=now,
    )
    session.add(held)
    session.flush()


def release(session: Session, *, clock: Clock, provider_ids: Collection[str] | None = None) -> list[DeliveryEvent]:
    """Apply the held receipts whose provider id a row now carries (these ids, just recorded by the dispatcher;
    or all, as the safety net for a receipt held while its send was being recorded); the failures they report."""
    query = select(HeldReceipt).join(OutboxMessage, col(OutboxMessage.provider_id) == col(HeldReceipt.provider_id))
    if provider_ids is not None:
        if not provider_ids:
            return []
        query = query.where(col(HeldReceipt.provider_id).in_(list(provider_ids)))
    result = PushResult()
    for held in session.exec(
        query.order_by(col(HeldReceipt.id)).with_for_update(skip_locked=True, of=HeldReceipt)
    ).all():
        _status(
            session,
            clock,
            result,
            provider=held.provider,
            provider_id=held.provider_id,
            status=held.status,
            message_id=None,
            error_code=held.error_code,
            error_message=held.error_message,
        )
        session.delete(held)
    session.flush()
    return result.events


def _reply(
    session: Session,
    clock: Clock,
    acknowledger: Acknowledger,
    result: PushResult,
    *,
    phone: str,
    text: str,
    key: str,
) -> None:
    """A reply SMS: acknowledge as Twilio's inbound does, and confirm by SMS (a logical template)."""
    parsed = inbound.parse_reply(text)
    template, params = "ack_help", dict[str, Any]()
    page = inbound.pending_page(session, phone=phone, code=parsed.code) if parsed.ack else None
    if parsed.ack and page is None:
        template, params = ("ack_unknown_code", {"code": parsed.code}) if parsed.code else ("ack_nothing_pending", {})
    elif page is not None:
        outcome = acknowledger(session, clock=clock, phone=phone, page=page, via=Channel.sms.value)
        if outcome.template is not None:  # the answer the acknowledgement chose ("已确认在岗", "已签收", a refusal)
            template, params = outcome.template, outcome.params
        elif not outcome.ok:
            result.applied += 1
            return
        else:
            template, params = "ack_confirmed", {"code": page.incident_code or ""}
    result.applied += 1
    outbox.enqueue(
        session,
        outbox.message(
            clock=clock,
            channel=Channel.sms.value,
            to=phone,
            template=template,
            params=params,
            dedup_key=f"reply:{key}"[:200],
            person_id=page.person_id if page is not None else None,
        ),
    )


def apply(
    session: Session,
    *,
    clock: Clock,
    acknowledger: Acknowledger,
    observers: Sequence[Observer],
    provider: str,
    kind: str,
    items: list[_Item],
) -> PushResult:
    """Apply a validated push, each item once."""
    result = PushResult()
    for item in items:
        if isinstance(item, AliyunSmsReport):
            key = f"{item.biz_id}:{item.success}"
        elif isinstance(item, AliyunVoiceReport):
            key = f"{item.call_id}:{item.status_code}:{item.dtmf}"
        elif isinstance(item, TencentSmsStatus):
            key = f"{item.sid}:{item.report_status}"
        elif isinstance(item, AliyunSmsUp):
            key = item.sequence_id or f"{item.phone_number}:{item.send_time}:{item.content}"
        else:
            assert isinstance(item, TencentSmsReply)
            key = f"{item.nationcode}{item.mobile}:{item.time}:{item.text}"
        if not _first_time(session, clock, provider, kind, key):
            result.repeated += 1
            continue
        if isinstance(item, AliyunSmsReport):
            _status(
                session,
                clock,
                result,
                provider=provider,
                provider_id=item.biz_id,
                status="delivered" if item.success else "undelivered",
                message_id=_our_id(item.out_id),
                error_code=None if item.success else item.err_code,
                error_message=None if item.success else item.err_msg,
            )
        elif isinstance(item, TencentSmsStatus):
            ok = item.report_status.upper() == "SUCCESS"
            _status(
                session,
                clock,
                result,
                provider=provider,
                provider_id=item.sid,
                status="delivered" if ok else "undelivered",
                message_id=None,
                error_code=None if ok else item.errmsg,
                error_message=None if ok else item.description,
            )
        elif isinstance(item, AliyunVoiceReport):
            answered = item.status_code == "200000"
            row = _status(
                session,
                clock,
                result,
                provider=provider,
                provider_id=item.call_id,
                status="completed" if answered else "no-answer",
                message_id=_our_id(item.out_id),
                error_code=None if answered else item.status_code,
                error_message=None if answered else item.status_msg,
            )
            if row is not None and row.id is not None and item.dtmf:
                # The key pressed during the IvrCall: the same acknowledgement as Twilio's <Gather>.
                inbound.handle_keypress(
                    session, clock=clock, acknowledger=acknowledger, message_id=row.id, digits=item.dtmf[:1]
                )
        elif isinstance(item, AliyunSmsUp):
            phone = item.phone_number if item.phone_number.startswith("+") else "+86" + item.phone_number
            _reply(session, clock, acknowledger, result, phone=phone, text=item.content, key=f"aliyun:{key}")
        else:
            assert isinstance(item, TencentSmsReply)
            phone = f"+{item.nationcode or '86'}{item.mobile}"
            _reply(session, clock, acknowledger, result, phone=phone, text=item.text, key=f"tencent:{key}")
    delivery.notify(observers, session, clock, result.events)
    return result
