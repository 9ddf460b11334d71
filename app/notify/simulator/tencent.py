"""Tencent Cloud SMS (API 2021-01-11), as its official SDK calls it, for the simulator.

The SDK posts JSON to `http://<endpoint>/` with the action in `X-TC-Action` and `Authorization:
TC3-HMAC-SHA256 …`. The signature is recomputed with the SDK's own signer (`tencentcloud.common.sign.Sign.
sign_tc3`) against the simulator's SecretId/SecretKey. SendSms answers per number in `SendStatusSet` with
Tencent's codes (`LimitExceeded.PhoneNumberDailyLimit`, …); status reports and replies are pushed to our
callbacks as JSON arrays, now and then twice; PullSmsSendStatus(ByPhoneNumber) read the same reports.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tencentcloud.common.sign import Sign

from app.notify import message_templates
from app.notify.simulator.common import ProviderSim, beijing

SIGN_TYPE = "TC3-HMAC-SHA256"
ACTIONS = {"SendSms", "PullSmsSendStatus", "PullSmsSendStatusByPhoneNumber"}


def _answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"Response": {**body, "RequestId": str(uuid.uuid4())}}, status_code=status)


def _error(code: str, message: str, status: int = 200) -> JSONResponse:
    # Tencent answers errors with HTTP 200 and Response.Error; the SDK raises TencentCloudSDKException.
    return _answer({"Error": {"Code": code, "Message": message}}, status)


def verify(request: Request, body: bytes, secret_id: str, secret_key: str) -> str | None:
    """None when signed by the simulator's SecretId/SecretKey; otherwise Tencent's error code."""
    header = request.headers.get("authorization", "")
    if not header.startswith(SIGN_TYPE + " "):
        return "AuthFailure.SignatureFailure"
    parts = dict(p.strip().split("=", 1) for p in header[len(SIGN_TYPE) + 1 :].split(",") if "=" in p)
    scope = parts.get("Credential", "").split("/")
    if len(scope) != 4 or scope[0] != secret_id:
        return "AuthFailure.SecretIdNotFound"
    _, date, service, _ = scope
    if service != "sms" or parts.get("SignedHeaders") != "content-type;host":
        return "AuthFailure.SignatureFailure"
    timestamp = request.headers.get("x-tc-timestamp", "")
    if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 300:
        return "AuthFailure.SignatureExpire"
    canonical = "\n".join(
        [
            request.method,
            "/",
            request.url.query if request.method == "GET" else "",
            f"content-type:{request.headers.get('content-type', '')}\nhost:{request.headers.get('host', '')}\n",
            "content-type;host",
            hashlib.sha256(b"" if request.method == "GET" else body).hexdigest(),
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    string2sign = f"{SIGN_TYPE}\n{timestamp}\n{date}/{service}/tc3_request\n{digest}"
    expected = Sign.sign_tc3(secret_key, date, service, string2sign)
    if not hmac.compare_digest(expected, parts.get("Signature", "")):
        return "AuthFailure.SignatureFailure"
    return None


async def handle(request: Request, state: ProviderSim) -> Response:
    body = await request.body()
    action = request.headers.get("x-tc-action", "")
    cfg = state.config
    if action not in ACTIONS:
        return _error("InvalidAction", f"action {action} not found")
    problem = verify(request, body, cfg.tencent_secret_id, cfg.tencent_secret_key)
    if problem is not None:
        state.count("tencent_rejected_signature")
        return _error(problem, "The provided credentials could not be validated.")
    try:
        params: dict[str, Any] = json.loads(body or b"{}")
    except ValueError:
        return _error("InvalidParameter", "the body is not JSON")
    if cfg.latency:
        await asyncio.sleep(cfg.latency)
    fault = cfg.faults.get("tencent")
    if fault == "down":
        state.count("tencent_down")
        return Response("Service Unavailable", status_code=503)
    if params.get("SmsSdkAppId") != cfg.tencent_sdk_app_id:
        return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
    if action != "SendSms":
        return _pull(state, params, by_phone=action == "PullSmsSendStatusByPhoneNumber")
    answer = _send(state, params, rate_limited=fault == "rate_limited")
    if fault == "timeout":
        await state.hold("tencent")
    return answer


def _send(state: ProviderSim, params: dict[str, Any], *, rate_limited: bool) -> JSONResponse:
    numbers = params.get("PhoneNumberSet") or []
    sign = params.get("SignName") or ""
    found = state.template("tencent", str(params.get("TemplateId", "")))
    if found is None:
        return _error("FailedOperation.TemplateIncorrectOrUnapproved", "template is not approved or not exist.")
    if not sign:
        return _error("FailedOperation.SignatureIncorrectOrUnapproved", "signature is not approved or not exist.")
    name, binding = found
    values = [str(v) for v in params.get("TemplateParamSet") or []]
    if len(values) != len(binding.params):
        return _error("InvalidParameterValue.TemplateParameterFormatError", "template parameters do not match.")
    if any(len(v) > message_templates.VARIABLE_LIMIT["tencent"] for v in values):
        return _error("InvalidParameterValue.TemplateParameterLengthLimit", "a template parameter is too long.")
    statuses: list[dict[str, Any]] = []
    for number in numbers:
        status = {"SerialNo": "", "PhoneNumber": number, "Fee": 0, "SessionContext": params.get("SessionContext", ""),
                  "IsoCode": "CN"}  # fmt: skip
        if rate_limited:
            state.count("tencent_rate_limited")
            statuses.append(
                status | {"Code": "LimitExceeded.PhoneNumberThirtySecondLimit", "Message": "30秒内频率超限"}
            )
            continue
        if not (
            isinstance(number, str) and number.startswith("+86") and len(number) == 14 and number[1:].isdigit()
        ) or (number in state.config.invalid_numbers):
            statuses.append(
                status | {"Code": "InvalidParameterValue.IncorrectPhoneNumber", "Message": "手机号格式错误"}
            )
            continue
        if not state.within_daily_limit("tencent", number):
            statuses.append(
                status
                | {"Code": "LimitExceeded.PhoneNumberDailyLimit", "Message": "单个手机号日下发短信条数超过设定的上限"}
            )
            continue
        serial = f"3369:{secrets.randbelow(10**20):020d}"
        text = message_templates.render(binding, list(zip(binding.params, values, strict=True)), "tencent")
        message = state.record_message(
            provider="tencent",
            sid=serial,
            to=number,
            sender=sign,
            body=f"【{sign}】{text}",
            key=params.get("SessionContext") or serial,
            extra={"template": name, "session_context": params.get("SessionContext", ""), "report": None},
        )
        state.spawn(_report(state, message))
        statuses.append(status | {"SerialNo": serial, "Fee": 1, "Code": "Ok", "Message": "send success"})
    return _answer({"SendStatusSet": statuses})


async def _report(state: ProviderSim, message: dict[str, Any]) -> None:
    await state.delivery_wait()
    final = state.final_status()
    message["status"] = final
    item = {
        "user_receive_time": beijing(datetime.now(UTC)),
        "nationcode": "86",
        "mobile": message["to"].removeprefix("+86"),
        "report_status": "SUCCESS" if final == "delivered" else "FAIL",
        "errmsg": "DELIVRD" if final == "delivered" else "MK:0001",
        "description": "用户短信送达成功" if final == "delivered" else "用户手机关机或停机",
        "sid": message["sid"],
    }
    message["extra"]["report"] = item
    await state.push(state.config.tencent_sms_status_url, [item])


def _pull(state: ProviderSim, params: dict[str, Any], *, by_phone: bool) -> JSONResponse:
    phone = params.get("PhoneNumber")
    with state.lock:
        found = [
            m
            for m in state.messages
            if m.get("provider") == "tencent" and m["extra"].get("report") and (not by_phone or m["to"] == phone)
        ]
    limit = int(params.get("Limit") or 100)
    statuses = [
        {
            "UserReceiveTime": m["extra"]["report"]["user_receive_time"],
            "CountryCode": "86",
            "SubscriberNumber": m["to"].removeprefix("+86"),
            "PhoneNumber": m["to"],
            "SerialNo": m["sid"],
            "ReportStatus": m["extra"]["report"]["report_status"],
            "Description": m["extra"]["report"]["description"],
            "SessionContext": m["extra"].get("session_context", ""),
        }
        for m in found[:limit]
    ]
    return _answer({"PullSmsSendStatusSet": statuses})


async def reply(state: ProviderSim, phone: str, text: str, sign_name: str) -> int | None:
    """A phone answers a Tencent Cloud SMS: the reply push."""
    item = {
        "extend": "",
        "mobile": phone.removeprefix("+86"),
        "nationcode": "86",
        "sign": sign_name,
        "text": text,
        "time": int(time.time()),
    }
    return await state.push(state.config.tencent_sms_reply_url, [item])
