"""Twilio's callbacks: delivery receipts, inbound SMS, voice TwiML and keypresses.

Every request must carry a valid X-Twilio-Signature for the URL Twilio called (rebuilt from
PUBLIC_BASE_URL, since a proxy may have changed host and scheme); otherwise 403 and nothing changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import FormData

from app.errors import Forbidden
from app.notify import inbound, outbox
from app.routers.deps import ClockDep, SessionDep, SettingsDep
from app.schemas import MAX_ID

router = APIRouter(prefix="/twilio", tags=["twilio"])
XML = "application/xml"


async def verified_form(request: Request, settings: SettingsDep) -> FormData:
    form = await request.form()
    url = settings.public_base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    tokens = request.app.state.twilio.auth_tokens
    if not inbound.valid_signature(tokens, url, form, request.headers.get("X-Twilio-Signature", "")):
        raise Forbidden("invalid or missing X-Twilio-Signature")
    return form


TwilioForm = Annotated[FormData, Depends(verified_form)]
Oid = Annotated[int | None, Query(ge=1, le=MAX_ID, description="our outbox message id, passed through Twilio")]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/sms/status", status_code=204, summary="SMS delivery receipt")
def sms_status(form: TwilioForm, session: SessionDep, clock: ClockDep, oid: Oid = None) -> Response:
    outbox.apply_provider_status(
        session,
        clock=clock,
        provider_id=_text(form, "MessageSid"),
        provider_status=_text(form, "MessageStatus"),
        message_id=oid,
        error_code=_text(form, "ErrorCode") or None,
    )
    return Response(status_code=204)


@router.post("/voice/status", status_code=204, summary="Call progress receipt")
def voice_status(form: TwilioForm, session: SessionDep, clock: ClockDep, oid: Oid = None) -> Response:
    outbox.apply_provider_status(
        session,
        clock=clock,
        provider_id=_text(form, "CallSid"),
        provider_status=_text(form, "CallStatus"),
        message_id=oid,
    )
    return Response(status_code=204)


@router.post("/sms/inbound", summary="An SMS to our number: `1` or `1 <code>` acknowledges")
def sms_inbound(request: Request, form: TwilioForm, session: SessionDep, clock: ClockDep) -> Response:
    _, reply = inbound.handle_sms(
        session,
        clock=clock,
        acknowledger=request.app.state.acknowledger,
        phone=_text(form, "From"),
        body=_text(form, "Body"),
    )
    return Response(inbound.messaging_twiml(reply), media_type=XML)


@router.post("/voice/answer", summary="TwiML for a paging call: the message, then press 1")
def voice_answer(
    form: TwilioForm, session: SessionDep, clock: ClockDep, settings: SettingsDep, oid: Oid = None
) -> Response:
    page = outbox.get(session, oid) if oid is not None else None
    if page is not None:
        outbox.apply_provider_status(
            session, clock=clock, provider_id=_text(form, "CallSid"), provider_status="in-progress", message_id=oid
        )
    gather_url = f"{settings.public_base_url}/twilio/voice/gather?oid={oid}"
    return Response(inbound.answer_twiml(page, gather_url=gather_url), media_type=XML)


@router.post("/voice/gather", summary="A keypress during a paging call")
def voice_gather(request: Request, form: TwilioForm, session: SessionDep, clock: ClockDep, oid: Oid = None) -> Response:
    if oid is None:
        return Response(inbound.say_twiml("无效请求"), media_type=XML)
    _, text = inbound.handle_keypress(
        session, clock=clock, acknowledger=request.app.state.acknowledger, message_id=oid, digits=_text(form, "Digits")
    )
    return Response(inbound.say_twiml(text), media_type=XML)
