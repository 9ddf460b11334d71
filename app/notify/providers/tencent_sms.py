"""Tencent Cloud SMS (腾讯云短信) through its official SDK, `tencentcloud-sdk-python-sms` (API 2021-01-11).

SendSms answers per number (`SendStatusSet`, each with its own `Code`); `SessionContext` carries our outbox
id and comes back in receipts. Whether a send whose answer was lost went through can only be read from the
status reports (PullSmsSendStatusByPhoneNumber), which must be enabled in Tencent's console
(`TENCENT_SMS_PULL_STATUS=true`); without it the provider cannot be asked, and such a row is not sent again
by another provider.
"""

from __future__ import annotations

import time

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111 import sms_client

from app.notify import message_templates
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.message_templates import TemplateBook
from app.notify.models import ErrorClass

NAME = "tencent"
ENDPOINT = "sms.tencentcloudapi.com"
REGION = "ap-guangzhou"

_RECIPIENT = {
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.PhoneNumberParseFail",
    "UnsupportedOperation.UnsupportedRegion",
}
_TEMPLATE_PREFIXES = (
    "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.SignatureIncorrectOrUnapproved",
    "FailedOperation.ContainSensitiveWord",
    "FailedOperation.MissingTemplateToModify",
    "InvalidParameterValue.TemplateParameter",
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
    "InvalidParameterValue.MissingTemplate",
)
_ACCOUNT_PREFIXES = (
    "AuthFailure",
    "UnauthorizedOperation",
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "FailedOperation.ServiceSuspend",
    "InvalidParameterValue.SdkAppIdNotExist",
)


def error_class(code: str) -> ErrorClass:
    """A Tencent error code (per number or for the whole request) as an error class."""
    if code.startswith(("LimitExceeded", "RequestLimitExceeded")):
        return ErrorClass.rate_limited
    if code in _RECIPIENT:
        return ErrorClass.recipient_invalid
    if code.startswith(_TEMPLATE_PREFIXES):
        return ErrorClass.template_invalid
    if code.startswith(_ACCOUNT_PREFIXES):
        return ErrorClass.account
    return ErrorClass.transient


def classify(exc: Exception) -> ProviderResult:
    if isinstance(exc, TencentCloudSDKException):
        code = str(exc.get_code() or "")
        text = str(exc.get_message() or "")
        reason = f"tencent {code}: {text}"[:500]
        if code == "ClientNetworkError":
            # The SDK folds every requests error into one code; only the text tells "never left" from a timeout.
            never_left = "Failed to establish a new connection" in text or "ConnectTimeout" in text
            return ProviderResult(ErrorClass.transient, error=reason, uncertain=not never_left)
        return ProviderResult(error_class(code), error=reason)
    return ProviderResult(ErrorClass.transient, error=f"tencent error: {exc!r}"[:500], uncertain=True)


class TencentSms:
    name = NAME

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        sign_name: str | None,
        book: TemplateBook,
        endpoint: str | None = None,
        timeout: float = 10.0,
        pull_status: bool = False,
    ) -> None:
        target = endpoint or ENDPOINT
        protocol = "https"
        if target.startswith(("http://", "https://")):
            protocol, _, target = target.partition("://")
        http = HttpProfile(endpoint=target.rstrip("/"), protocol=protocol, reqTimeout=max(1, round(timeout)))
        self.client = sms_client.SmsClient(
            credential.Credential(secret_id, secret_key), REGION, ClientProfile(httpProfile=http)
        )
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.book = book
        self.pull_status = pull_status

    def send(self, message: ChannelMessage) -> ProviderResult:
        doc = self.book.document()
        binding = doc.binding(NAME, message.template)
        sign = doc.sign_name(NAME, message.template) or self.sign_name
        if binding is None:
            return ProviderResult(
                ErrorClass.template_invalid, error=f"template {message.template} is not bound for tencent"
            )
        if not sign:
            return ProviderResult(ErrorClass.account, error="no sign name (TENCENT_SMS_SIGN_NAME)")
        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = [message.to]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = sign
        request.TemplateId = binding.template_id
        request.TemplateParamSet = [
            v for _, v in message_templates.variable_values(binding, message.template, message.params)
        ]
        request.SessionContext = str(message.id)
        try:
            response = self.client.SendSms(request)
        except Exception as exc:
            return classify(exc)
        statuses = list(response.SendStatusSet or [])
        if not statuses:
            return ProviderResult(ErrorClass.transient, error="tencent answered without a status for the number")
        status = statuses[0]
        if status.Code == "Ok":
            return ProviderResult(ErrorClass.ok, provider_id=status.SerialNo)
        return ProviderResult(error_class(status.Code or ""), error=f"tencent {status.Code}: {status.Message}")

    def went_through(self, message: ChannelMessage) -> ProviderResult | None:
        if not self.pull_status:
            return ProviderResult(ErrorClass.transient, error="status pull is not enabled (TENCENT_SMS_PULL_STATUS)")
        request = sms_models.PullSmsSendStatusByPhoneNumberRequest()
        request.BeginTime = int(time.time()) - 2 * 86400
        request.Offset = 0
        request.Limit = 100
        request.PhoneNumber = message.to
        request.SmsSdkAppId = self.sdk_app_id
        try:
            response = self.client.PullSmsSendStatusByPhoneNumber(request)
        except Exception as exc:
            failed = classify(exc)
            return ProviderResult(failed.error_class, error=f"PullSmsSendStatusByPhoneNumber: {failed.error}")
        for status in response.PullSmsSendStatusSet or []:
            if status.SessionContext == str(message.id):
                return ProviderResult(ErrorClass.ok, provider_id=status.SerialNo, extra={"adopted": True})
        # A report comes once the carrier answered, within seconds as a rule: none yet does not prove it did not
        # go out, none after two more attempts' backoff (tens of seconds) is taken to mean it did not.
        if message.attempts >= 3:
            return None
        return ProviderResult(ErrorClass.transient, error="no status report for it yet", uncertain=True)
