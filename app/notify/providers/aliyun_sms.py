"""Alibaba Cloud SMS (阿里云短信) through its official SDK, `alibabacloud-dysmsapi20170525`.

SendSms with the approved template bound to the message's logical template; `OutId` carries our outbox id,
so receipts (SmsReport pushes) and QuerySendDetails find the row even when the send's answer was lost.
The SDK retries nothing by itself (no retry options are set): retrying is the dispatcher's job.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi.models import Config

from app.notify import message_templates
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.message_templates import TemplateBook
from app.notify.models import ErrorClass
from app.notify.providers import national
from app.notify.providers.aliyun_common import classify, client_config

NAME = "aliyun"
ENDPOINT = "dysmsapi.aliyuncs.com"
SHANGHAI = ZoneInfo("Asia/Shanghai")

# SendSms `Code`s (help.aliyun.com, SMS error codes) by what they mean for the message.
CODES: dict[str, ErrorClass] = {
    "isv.BUSINESS_LIMIT_CONTROL": ErrorClass.rate_limited,  # per-number minute/hour/day limits
    "isv.DAY_LIMIT_CONTROL": ErrorClass.rate_limited,
    "isv.MONTH_LIMIT_CONTROL": ErrorClass.rate_limited,
    "Throttling.User": ErrorClass.rate_limited,
    "isv.MOBILE_NUMBER_ILLEGAL": ErrorClass.recipient_invalid,
    "isv.MOBILE_COUNT_OVER_LIMIT": ErrorClass.recipient_invalid,
    "isv.SMS_TEMPLATE_ILLEGAL": ErrorClass.template_invalid,
    "isv.SMS_SIGNATURE_ILLEGAL": ErrorClass.template_invalid,
    "isv.SMS_SIGN_ILLEGAL": ErrorClass.template_invalid,
    "isv.TEMPLATE_MISSING_PARAMETERS": ErrorClass.template_invalid,
    "isv.TEMPLATE_PARAMS_ILLEGAL": ErrorClass.template_invalid,
    "isv.INVALID_JSON_PARAM": ErrorClass.template_invalid,
    "isv.PARAM_LENGTH_LIMIT": ErrorClass.template_invalid,
    "isv.BLACK_KEY_CONTROL_LIMIT": ErrorClass.template_invalid,
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": ErrorClass.template_invalid,
    "isv.AMOUNT_NOT_ENOUGH": ErrorClass.account,
    "isv.OUT_OF_SERVICE": ErrorClass.account,
    "isv.ACCOUNT_NOT_EXISTS": ErrorClass.account,
    "isv.ACCOUNT_ABNORMAL": ErrorClass.account,
    "isv.PRODUCT_UN_SUBSCRIPT": ErrorClass.account,
    "isv.PRODUCT_UNSUBSCRIBE": ErrorClass.account,
    "isp.RAM_PERMISSION_DENY": ErrorClass.account,
    "isp.SYSTEM_ERROR": ErrorClass.transient,
}


class AliyunSms:
    name = NAME

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        sign_name: str | None,
        book: TemplateBook,
        endpoint: str | None = None,
        timeout: float = 10.0,
        pool_size: int = 64,
    ) -> None:
        config: Config = client_config(
            access_key_id, access_key_secret, endpoint or ENDPOINT, timeout=timeout, pool_size=pool_size
        )
        self.client = Client(config)
        self.sign_name = sign_name
        self.book = book

    def request(self, message: ChannelMessage) -> sms_models.SendSmsRequest | ProviderResult:
        doc = self.book.document()
        binding = doc.binding(NAME, message.template)
        sign = doc.sign_name(NAME, message.template) or self.sign_name
        if binding is None:
            return ProviderResult(
                ErrorClass.template_invalid, error=f"template {message.template} is not bound for aliyun"
            )
        if not sign:
            return ProviderResult(ErrorClass.account, error="no sign name (ALIYUN_SMS_SIGN_NAME)")
        values = message_templates.variable_values(binding, message.template, message.params)
        return sms_models.SendSmsRequest(
            phone_numbers=national(message.to),
            sign_name=sign,
            template_code=binding.template_id,
            # \uXXXX escapes: one percent-escape per character in the query string instead of three, which
            # urllib3 re-scans byte by byte several times per request (the SDK's largest CPU cost, profiled).
            template_param=json.dumps(dict(values)) if values else None,
            out_id=str(message.id),
        )

    def send(self, message: ChannelMessage) -> ProviderResult:
        request = self.request(message)
        if isinstance(request, ProviderResult):
            return request
        try:
            body = self.client.send_sms(request).body
        except Exception as exc:
            return classify(exc)
        return answer(body.code, body.message, body.biz_id)

    def went_through(self, message: ChannelMessage) -> ProviderResult | None:
        """QuerySendDetails for this number today (Beijing time) and yesterday: a send with our OutId."""
        now = datetime.now(SHANGHAI)
        for day in (now.strftime("%Y%m%d"), (now - timedelta(days=1)).strftime("%Y%m%d")):
            query = sms_models.QuerySendDetailsRequest(
                phone_number=national(message.to), send_date=day, page_size=50, current_page=1
            )
            try:
                body = self.client.query_send_details(query).body
            except Exception as exc:
                failed = classify(exc)
                return ProviderResult(failed.error_class, error=f"QuerySendDetails: {failed.error}", uncertain=True)
            if body.code != "OK":
                return ProviderResult(ErrorClass.transient, error=f"QuerySendDetails: {body.code} {body.message}")
            dtos: list[Any] = (body.sms_send_detail_dtos.sms_send_detail_dto or []) if body.sms_send_detail_dtos else []
            for dto in dtos:
                if dto.out_id == str(message.id):
                    # The receipt brings the BizId; the row is found by our id until then.
                    return ProviderResult(ErrorClass.ok, extra={"adopted": True, "send_status": dto.send_status})
        return None


def answer(code: str | None, text: str | None, biz_id: str | None) -> ProviderResult:
    if code == "OK":
        return ProviderResult(ErrorClass.ok, provider_id=biz_id)
    error_class = CODES.get(code or "", ErrorClass.transient)
    return ProviderResult(error_class, error=f"aliyun {code}: {text}")
