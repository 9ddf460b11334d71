"""Group robots over their HTTP APIs (httpx): WeCom's `key` webhook and DingTalk's signed custom robot.

Both answer HTTP 200 with `{"errcode": 0, "errmsg": "ok"}` on success and an errcode otherwise; "too many"
(DingTalk 130101, WeCom 45009) is rate-limited and retried after a minute, a bad signature, keyword, token
or key is permanent. A message carries every post of a bundle (see app.notify.robots).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import quote_plus

import httpx

from app import netguard
from app.clock import Clock
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.models import ErrorClass, RobotKind

RATE_LIMITED = {130101, 45009}
# What the robots' errcodes mean; anything else is named by its code only (a robot URL is set by a unit admin:
# whatever answers there must not get its text onto our records).
MEANING = {
    130101: "too many messages (DingTalk)",
    45009: "too many messages (WeCom)",
    310000: "signature, keyword or IP refused (DingTalk)",
    300001: "unknown access token (DingTalk)",
    93000: "invalid webhook URL (WeCom)",
    -1: "system busy",
}
RETRY_AFTER_SECONDS = 60.0


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signed mode: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), URL-encoded."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac).decode())


def payload(kind: str, text: str, mobiles: list[str]) -> dict[str, Any]:
    if kind == RobotKind.dingtalk:
        return {"msgtype": "text", "text": {"content": text}, "at": {"atMobiles": mobiles, "isAtAll": False}}
    return {"msgtype": "text", "text": {"content": text, "mentioned_mobile_list": mobiles}}


class RobotChannel:
    """Posts to the address the robot URL's name resolves to now, after checking it (`app.netguard.pin`), as
    webhooks do: a name re-pointed inside since the robot was registered is refused, never contacted."""

    def __init__(
        self,
        *,
        clock: Clock,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
        allow_private: bool = False,
        resolver: netguard.Resolver = netguard.system_resolver,
    ) -> None:
        self.clock = clock
        self.http = http or httpx.Client(limits=httpx.Limits(max_connections=16, max_keepalive_connections=8))
        self.timeout = timeout
        self.allow_private = allow_private
        self.resolver = resolver

    def send(self, message: ChannelMessage) -> ProviderResult:
        kind = str(message.params.get("kind", ""))
        if not message.to or kind not in RobotKind.__members__:
            return ProviderResult(ErrorClass.permanent, error="the robot is gone")
        try:
            target = netguard.pin(message.to, allow_private=self.allow_private, resolver=self.resolver)
        except netguard.Refused as exc:
            return ProviderResult(ErrorClass.permanent, error=f"refused target: {exc.reason}")
        url = target.url
        if kind == RobotKind.dingtalk:
            if not message.secret:
                return ProviderResult(ErrorClass.permanent, error="a DingTalk robot without its secret")
            timestamp = int(self.clock.now().timestamp() * 1000)
            url += f"{'&' if '?' in url else '?'}timestamp={timestamp}&sign={dingtalk_sign(message.secret, timestamp)}"
        body = payload(kind, message.body, [str(m) for m in message.params.get("mobiles", [])])
        try:
            response = self.http.post(
                url, json=body, headers=target.headers, timeout=self.timeout, extensions=target.extensions
            )
        except httpx.TimeoutException as exc:
            # A robot has no way to ask whether a post went through: a repeat is the lesser harm than a lost page.
            return ProviderResult(ErrorClass.transient, error=f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return ProviderResult(ErrorClass.transient, error=f"cannot post: {type(exc).__name__}")
        if response.status_code == 429:
            return ProviderResult(ErrorClass.rate_limited, error="HTTP 429", retry_after=RETRY_AFTER_SECONDS)
        if response.status_code >= 500:
            return ProviderResult(ErrorClass.transient, error=f"HTTP {response.status_code}")
        try:
            answer = response.json()
            code = int(answer["errcode"])
        except (ValueError, KeyError, AttributeError, TypeError):
            return ProviderResult(ErrorClass.permanent, error=f"HTTP {response.status_code}: not a robot's answer")
        if code == 0:
            return ProviderResult(ErrorClass.ok, delivered=True, extra={"errcode": 0})
        error = f"{kind} errcode {code}" + (f": {MEANING[code]}" if code in MEANING else "")
        if code in RATE_LIMITED:
            return ProviderResult(ErrorClass.rate_limited, error=error, retry_after=RETRY_AFTER_SECONDS)
        if code == -1:  # WeCom's "system busy"
            return ProviderResult(ErrorClass.transient, error=error)
        return ProviderResult(ErrorClass.permanent, error=error)

    def close(self) -> None:
        self.http.close()
