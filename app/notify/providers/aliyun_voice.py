"""Alibaba Cloud voice (阿里云语音服务) through its official SDK, `alibabacloud-dyvmsapi20170525`.

A page that needs an acknowledgement is an IvrCall: the approved TTS template of `voice_page` is read out
(twice), key 1 plays `voice_ack_confirmed`, no key ends with `voice_no_input`. Alibaba Cloud reports the key
the callee pressed in the call's receipt (the VoiceReport push, field `dtmf`, with our `out_id`), which
`POST /callbacks/aliyun/{token}/voice-report` turns into the acknowledgement, as Twilio's <Gather> does.
Alibaba Cloud cannot be asked whether a call whose answer was lost went out (QueryCallDetailByCallId needs
the call id that answer carried), so such a call is treated like Twilio's: tried again.
"""

from __future__ import annotations

import json

from alibabacloud_dyvmsapi20170525 import models as vms_models
from alibabacloud_dyvmsapi20170525.client import Client

from app.notify import message_templates
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.message_templates import TemplateBook
from app.notify.models import ErrorClass
from app.notify.providers import national
from app.notify.providers.aliyun_common import classify, client_config

NAME = "aliyun"
BOOK = "aliyun_voice"  # its bindings in the message-templates document
ENDPOINT = "dyvmsapi.aliyuncs.com"

CODES: dict[str, ErrorClass] = {
    "isv.BUSINESS_LIMIT_CONTROL": ErrorClass.rate_limited,
    "isv.DAY_LIMIT_CONTROL": ErrorClass.rate_limited,
    "Throttling.User": ErrorClass.rate_limited,
    "isv.MOBILE_NUMBER_ILLEGAL": ErrorClass.recipient_invalid,
    "isv.CALLEDNUMBER_INVALID": ErrorClass.recipient_invalid,
    "isv.TTS_TEMPLATE_ILLEGAL": ErrorClass.template_invalid,
    "isv.VOICE_FILE_ILLEGAL": ErrorClass.template_invalid,
    "isv.TEMPLATE_MISSING_PARAMETERS": ErrorClass.template_invalid,
    "isv.DISPLAY_NUMBER_ILLEGAL": ErrorClass.account,
    "isv.AMOUNT_NOT_ENOUGH": ErrorClass.account,
    "isv.OUT_OF_SERVICE": ErrorClass.account,
    "isv.ACCOUNT_ABNORMAL": ErrorClass.account,
    "isp.SYSTEM_ERROR": ErrorClass.transient,
}


class AliyunVoice:
    name = NAME

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        show_number: str | None,
        book: TemplateBook,
        endpoint: str | None = None,
        timeout: float = 10.0,
        pool_size: int = 16,
    ) -> None:
        self.client = Client(
            client_config(access_key_id, access_key_secret, endpoint or ENDPOINT, timeout=timeout, pool_size=pool_size)
        )
        self.show_number = show_number
        self.book = book

    def send(self, message: ChannelMessage) -> ProviderResult:
        if not self.show_number:
            return ProviderResult(ErrorClass.account, error="no calling number (ALIYUN_VOICE_SHOW_NUMBER)")
        doc = self.book.document()
        start = doc.binding(BOOK, message.template)
        on_key = doc.binding(BOOK, "voice_ack_confirmed")
        bye = doc.binding(BOOK, "voice_no_input")
        if start is None or on_key is None or bye is None:
            missing = [n for n, b in ((message.template, start), ("voice_ack_confirmed", on_key),
                                      ("voice_no_input", bye)) if b is None]  # fmt: skip
            return ProviderResult(
                ErrorClass.template_invalid, error=f"not bound for aliyun voice: {', '.join(missing)}"
            )
        values = dict(message_templates.variable_values(start, message.template, message.params))
        request = vms_models.IvrCallRequest(
            called_number=national(message.to),
            called_show_number=self.show_number,
            start_code=start.template_id,
            start_tts_params=json.dumps(values) if values else None,
            menu_key_map=[vms_models.IvrCallRequestMenuKeyMap(key="1", code=on_key.template_id)],
            bye_code=bye.template_id,
            play_times=2,
            timeout=8000,
            out_id=str(message.id)[:15],
        )
        try:
            body = self.client.ivr_call(request).body
        except Exception as exc:
            return classify(exc)
        if body.code == "OK":
            return ProviderResult(ErrorClass.ok, provider_id=body.call_id)
        return ProviderResult(
            CODES.get(body.code or "", ErrorClass.transient), error=f"aliyun {body.code}: {body.message}"
        )
