"""Signed webhook deliveries: 2xx is delivered; timeouts, 429 and 5xx are retried; other answers dead-letter."""

from __future__ import annotations

import hashlib
import hmac

import httpx

from app import netguard
from app.clock import Clock
from app.notify.channels import ChannelMessage, ProviderResult
from app.notify.models import ErrorClass


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Signature header: HMAC-SHA256 over "<timestamp>.<raw body>" with the subscription's secret."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


class WebhookChannel:
    """Sends to the address the target's name resolves to now, after checking it (`app.netguard.pin`);
    a refused target is never contacted. Answers are summarised by status only: a receiver's body is not ours
    to store or show (it could be an internal page)."""

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
        self.http = http or httpx.Client(limits=httpx.Limits(max_connections=128, max_keepalive_connections=64))
        self.timeout = timeout
        self.allow_private = allow_private
        self.resolver = resolver

    def send(self, message: ChannelMessage) -> ProviderResult:
        if not message.secret:
            return ProviderResult(ErrorClass.permanent, error="the subscription is gone")
        body = message.body.encode()
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "dutyline-webhooks/1",
            "X-Webhook-Id": message.event_id or str(message.id),
            "X-Signature": signature(message.secret, timestamp, body),
        }
        try:
            target = netguard.pin(message.to, allow_private=self.allow_private, resolver=self.resolver)
        except netguard.Refused as exc:
            return ProviderResult(ErrorClass.permanent, error=f"refused target: {exc.reason}")
        headers |= target.headers
        try:
            response = self.http.post(
                target.url, content=body, headers=headers, timeout=self.timeout, extensions=target.extensions
            )
        except httpx.TimeoutException as exc:
            return ProviderResult(ErrorClass.transient, error=f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return ProviderResult(ErrorClass.transient, error=f"cannot deliver: {type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return ProviderResult(ErrorClass.ok, delivered=True, extra={"status": status})
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if status == 429:
            return ProviderResult(ErrorClass.rate_limited, error=reason, retry_after=_retry_after(response))
        if status >= 500 or status == 408:
            return ProviderResult(ErrorClass.transient, error=reason, retry_after=_retry_after(response))
        return ProviderResult(ErrorClass.permanent, error=reason)

    def close(self) -> None:
        self.http.close()
