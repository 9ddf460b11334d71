"""Alibaba Cloud SMS and voice, as their official SDKs call them, for the simulator.

The SDK posts to `http://<endpoint>/` with the action in `x-acs-action`, the parameters in the query string and
an `Authorization: ACS3-HMAC-SHA256 …` header. The signature is recomputed with the SDK's own signer
(`alibabacloud_tea_openapi.utils.Utils.get_authorization`) against the simulator's AccessKey pair, so a test
that passes proves the SDK is configured right. Answers are in Alibaba Cloud's shapes and codes; receipts
(SmsReport, VoiceReport) and replies (SmsUp) are pushed to our callbacks as JSON arrays, now and then twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from alibabacloud_tea_openapi.utils import Utils
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.notify import message_templates
from app.notify.simulator.common import ProviderSim, beijing

SIGN_TYPE = "ACS3-HMAC-SHA256"
SMS_ACTIONS = {"SendSms", "QuerySendDetails"}
VOICE_ACTIONS = {"IvrCall", "SingleCallByTts"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "RequestId": secrets.token_hex(8).upper(),
            "Code": code,
            "Message": message,
            "HostId": "dysmsapi.aliyuncs.com",
        },
        status_code=status,
    )


def _ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"RequestId": secrets.token_hex(8).upper(), **fields})


def verify(request: Request, body: bytes, access_key_id: str, access_key_secret: str) -> str | None:
    """None when the request is signed by the simulator's key pair; otherwise Alibaba Cloud's error code."""
    header = request.headers.get("authorization", "")
    if not header.startswith(SIGN_TYPE + " "):
        return "MissingAuthorization" if not header else "IncompleteSignature"
    parts = dict(p.strip().split("=", 1) for p in header[len(SIGN_TYPE) + 1 :].split(",") if "=" in p)
    if parts.get("Credential") != access_key_id:
        return "InvalidAccessKeyId.NotFound"
    signed = [h for h in parts.get("SignedHeaders", "").split(";") if h]
    if not {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date"} <= set(signed):
        return "IncompleteSignature"
    if request.headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
        return "IncompleteSignature"
    # The SDK signs the path it sent: always "/" (a mount may have rewritten ours).
    wanted = SimpleNamespace(
        pathname="/",
        method=request.method,
        query=dict(parse_qsl(request.url.query, keep_blank_values=True)),
        headers={h: request.headers.get(h, "") for h in signed},
    )
    expected = Utils.get_authorization(wanted, SIGN_TYPE, request.headers["x-acs-content-sha256"], access_key_id,
                                       access_key_secret)  # fmt: skip
    if not hmac.compare_digest(expected, header):
        return "SignatureDoesNotMatch"
    return None


async def handle(request: Request, state: ProviderSim) -> Response:
    """One Alibaba Cloud API call (SMS or voice)."""
    body = await request.body()
    action = request.headers.get("x-acs-action", "")
    cfg = state.config
    if action not in SMS_ACTIONS | VOICE_ACTIONS:
        return _error(404, "InvalidAction.NotFound", f"Specified api {action} is not found.")
    problem = verify(request, body, cfg.aliyun_access_key_id, cfg.aliyun_access_key_secret)
    if problem is not None:
        state.count("aliyun_rejected_signature")
        return _error(
            400 if problem != "InvalidAccessKeyId.NotFound" else 404,
            problem,
            "Specified signature is not matched with our calculation.",
        )
    if cfg.latency:
        await asyncio.sleep(cfg.latency)
    params = dict(parse_qsl(request.url.query, keep_blank_values=True))
    fault = cfg.faults.get("aliyun")
    if fault == "down":
        state.count("aliyun_down")
        return _error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
    if action == "QuerySendDetails":
        return _query(state, params)
    if fault == "rate_limited":
        state.count("aliyun_rate_limited")
        return _ok(Code="isv.BUSINESS_LIMIT_CONTROL", Message="触发分钟级流控Permits:1")
    if action == "SendSms":
        answer = _send_sms(state, params)
    else:
        answer = _call(state, params, action)
    if fault == "timeout":
        await state.hold("aliyun")
    return answer


def _phone(national: str) -> str:
    return national if national.startswith("+") else "+86" + national


def _send_sms(state: ProviderSim, params: dict[str, str]) -> JSONResponse:
    number, template_code = params.get("PhoneNumbers", ""), params.get("TemplateCode", "")
    if not params.get("SignName"):
        return _ok(Code="isv.SMS_SIGNATURE_ILLEGAL", Message="该账号下找不到对应签名")
    if (
        not (number.isdigit() and len(number) == 11 and number.startswith("1"))
        or _phone(number) in state.config.invalid_numbers
    ):
        return _ok(Code="isv.MOBILE_NUMBER_ILLEGAL", Message="非法手机号")
    found = state.template("aliyun", template_code)
    if found is None:
        return _ok(Code="isv.SMS_TEMPLATE_ILLEGAL", Message="该账号下找不到对应模板")
    name, binding = found
    try:
        values: dict[str, Any] = json.loads(params.get("TemplateParam") or "{}")
    except ValueError:
        return _ok(Code="isv.INVALID_JSON_PARAM", Message="JSON参数不合法")
    missing = [p for p in binding.params if p not in values]
    if missing:
        return _ok(Code="isv.TEMPLATE_MISSING_PARAMETERS", Message=f"模版缺少变量: {','.join(missing)}")
    if any(len(str(v)) > message_templates.VARIABLE_LIMIT["aliyun"] for v in values.values()):
        return _ok(Code="isv.PARAM_LENGTH_LIMIT", Message="参数超出长度限制")
    if not state.within_daily_limit("aliyun", _phone(number)):
        return _ok(Code="isv.BUSINESS_LIMIT_CONTROL", Message="触发天级流控Permits:10")
    text = message_templates.render(binding, [(p, str(values[p])) for p in binding.params], "aliyun")
    biz_id = f"{secrets.randbelow(10**15):015d}^{secrets.randbelow(10**10):010d}"
    message = state.record_message(
        provider="aliyun",
        sid=biz_id,
        to=_phone(number),
        sender=params.get("SignName", ""),
        body=f"【{params['SignName']}】{text}",
        key=params.get("OutId") or biz_id,
        extra={"template": name, "template_code": template_code, "out_id": params.get("OutId")},
    )
    state.spawn(_report(state, message))
    return _ok(Code="OK", Message="OK", BizId=biz_id)


async def _report(state: ProviderSim, message: dict[str, Any]) -> None:
    await state.delivery_wait()
    final = state.final_status()
    message["status"] = final
    now = beijing(datetime.now(UTC))
    item = {
        "phone_number": message["to"].removeprefix("+86"),
        "send_time": beijing(message["created"]),
        "report_time": now,
        "success": final == "delivered",
        "err_code": "DELIVERED" if final == "delivered" else "MK:0012",
        "err_msg": "用户接收成功" if final == "delivered" else "用户手机关机或停机",
        "sms_size": "1",
        "biz_id": message["sid"],
        "out_id": message["extra"].get("out_id") or "",
    }
    await state.push(state.config.aliyun_sms_report_url, [item])


def _query(state: ProviderSim, params: dict[str, str]) -> JSONResponse:
    phone, day = _phone(params.get("PhoneNumber", "")), params.get("SendDate", "")
    biz_id = params.get("BizId")
    with state.lock:
        found = [
            m
            for m in state.messages
            if m.get("provider") == "aliyun"
            and m["to"] == phone
            and beijing(m["created"])[:10].replace("-", "") == day
            and (not biz_id or m["sid"] == biz_id)
        ]
    status = {"delivered": 3, "undelivered": 2, "failed": 2}
    dtos = [
        {
            "PhoneNum": m["to"].removeprefix("+86"),
            "SendStatus": status.get(m["status"], 1),
            "ErrCode": "DELIVERED" if m["status"] == "delivered" else "",
            "TemplateCode": m["extra"]["template_code"],
            "Content": m["body"],
            "SendDate": beijing(m["created"]),
            "ReceiveDate": beijing(m["created"]) if m["status"] == "delivered" else "",
            "OutId": m["extra"].get("out_id") or "",
        }
        for m in found
    ]
    return _ok(Code="OK", Message="OK", TotalCount=len(dtos), SmsSendDetailDTOs={"SmsSendDetailDTO": dtos})


def _call(state: ProviderSim, params: dict[str, str], action: str) -> JSONResponse:
    number = params.get("CalledNumber", "")
    if not params.get("CalledShowNumber"):
        return _ok(Code="isv.DISPLAY_NUMBER_ILLEGAL", Message="外显号码不合法")
    if not (number.isdigit() and len(number) == 11) or _phone(number) in state.config.invalid_numbers:
        return _ok(Code="isv.MOBILE_NUMBER_ILLEGAL", Message="非法手机号")
    code = params.get("StartCode") or params.get("TtsCode") or ""
    found = state.template("aliyun_voice", code)
    if found is None:
        return _ok(Code="isv.TTS_TEMPLATE_ILLEGAL", Message="TTS模板不存在")
    _, binding = found
    try:
        values = json.loads(params.get("StartTtsParams") or params.get("TtsParam") or "{}")
    except ValueError:
        return _ok(Code="isv.INVALID_JSON_PARAM", Message="JSON参数不合法")
    said = message_templates.render(binding, [(p, str(values.get(p, ""))) for p in binding.params], "aliyun_voice")
    keys = {
        params[k.replace(".Key", ".Code")]: params[k]
        for k in params
        if k.startswith("MenuKeyMap.") and k.endswith(".Key") and k.replace(".Key", ".Code") in params
    }
    call_id = f"{secrets.randbelow(10**12):012d}^{secrets.randbelow(10**12):012d}"
    state.record_call(
        provider="aliyun",
        sid=call_id,
        to=_phone(number),
        sender=params["CalledShowNumber"],
        say=[said] * max(1, int(params.get("PlayTimes", "1") or 1)),
        key=params.get("OutId") or call_id,
        extra={"out_id": params.get("OutId"), "menu": {v: k for k, v in keys.items()}, "action": action},
    )
    return _ok(Code="OK", Message="OK", CallId=call_id)


async def press(state: ProviderSim, call: dict[str, Any], digits: str) -> dict[str, Any]:
    """The callee pressed keys: the call ends and its VoiceReport (with `dtmf`) is pushed to our callback."""
    call["pressed"].append(digits)
    menu: dict[str, str] = call["extra"].get("menu", {})
    said: list[str] = []
    if digits in menu:
        found = state.template("aliyun_voice", menu[digits])
        if found is not None:
            said = [found[1].text]
    return {"status": await _voice_report(state, call, dtmf=digits), "say": said}


async def hang_up(state: ProviderSim, call: dict[str, Any], *, answered: bool) -> dict[str, Any]:
    return {"status": await _voice_report(state, call, dtmf="", answered=answered), "say": []}


async def _voice_report(state: ProviderSim, call: dict[str, Any], *, dtmf: str, answered: bool = True) -> int | None:
    call["status"] = "completed" if answered else "no-answer"
    start = call["created"]
    end = datetime.now(UTC)
    item = {
        "call_id": call["sid"],
        "start_time": beijing(start) if answered else "",
        "end_time": beijing(end) if answered else "",
        "duration": str(max(1, int((end - start).total_seconds()))) if answered else "0",
        "status_code": "200000" if answered else "200005",
        "status_msg": "用户接听" if answered else "用户未接",
        "hangup_direction": "用户",
        "caller": call["from"],
        "callee": call["to"].removeprefix("+86"),
        "out_id": call["extra"].get("out_id") or "",
        "dtmf": dtmf,
        "voice_type": "voice",
        "early_media_code": "200010",
        "toll_type": "LOCAL",
    }
    return await state.push(state.config.aliyun_voice_report_url, [item])


async def reply(state: ProviderSim, phone: str, text: str, sign_name: str) -> int | None:
    """A phone answers an Alibaba Cloud SMS: the SmsUp push."""
    item = {
        "phone_number": phone.removeprefix("+86"),
        "send_time": beijing(datetime.now(UTC)),
        "content": text,
        "sign_name": sign_name,
        "dest_code": "",
        "sequence_id": secrets.randbelow(10**12),
    }
    return await state.push(state.config.aliyun_sms_up_url, [item])
