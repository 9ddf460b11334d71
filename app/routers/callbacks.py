"""Receipts and replies pushed by Alibaba Cloud and Tencent Cloud (PRODUCT.md §8).

`{token}` is the per-installation secret set in the providers' consoles (their pushes are not signed): a wrong
token is a 404 and changes nothing. The answers are the ones each provider expects.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request

from app.errors import NotFound
from app.notify import receipts
from app.routers.deps import ClockDep, SessionDep

router = APIRouter(prefix="/callbacks", tags=["callbacks"])

Push = Annotated[Any, Body(description="the provider's JSON array of items")]


def _check_token(request: Request, token: str) -> None:
    expected: str = request.app.state.callback_token
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise NotFound("no such callback")


def _apply(request: Request, session: Any, clock: Any, provider: str, kind: str, token: str, payload: Any) -> None:
    _check_token(request, token)
    items = receipts.parse(provider, kind, payload)
    result = receipts.apply(
        session,
        clock=clock,
        acknowledger=request.app.state.acknowledger,
        observers=request.app.state.delivery_observers,
        provider=provider,
        kind=kind,
        items=items,
    )
    if result.unknown:
        request.app.state.push_ignored.labels(provider, kind).inc(result.unknown)


AliyunKind = Literal["sms-report", "sms-up", "voice-report"]
TencentKind = Literal["sms-status", "sms-reply"]


@router.post("/aliyun/{token}/{kind}", summary="Alibaba Cloud pushes: SmsReport, SmsUp, VoiceReport (JSON arrays)")
def aliyun(
    request: Request, token: str, kind: AliyunKind, payload: Push, session: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    _apply(request, session, clock, "aliyun", kind, token, payload)
    return {"code": 0, "msg": "成功"}


@router.post("/tencent/{token}/{kind}", summary="Tencent Cloud pushes: status reports and replies (JSON arrays)")
def tencent(
    request: Request, token: str, kind: TencentKind, payload: Push, session: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    _apply(request, session, clock, "tencent", kind, token, payload)
    return {"result": 0, "errmsg": "OK"}
