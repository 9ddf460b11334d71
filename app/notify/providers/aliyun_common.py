"""What Alibaba Cloud's SMS and voice SDKs share: the client configuration and how a failure is classified."""

from __future__ import annotations

from typing import Any

import requests
from alibabacloud_tea_openapi.models import Config

from app.notify.channels import ProviderResult
from app.notify.models import ErrorClass

# Whole-request errors (HTTP 4xx/5xx from the gateway): credentials and signature problems are the account's.
_ACCOUNT_PREFIXES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "InvalidSecurityToken", "NoPermission")


def client_config(
    access_key_id: str, access_key_secret: str, endpoint: str, *, timeout: float, pool_size: int
) -> Config:
    """`endpoint` is a host[:port], or `http://host:port` for the simulator (plain HTTP)."""
    protocol = "https"
    if endpoint.startswith(("http://", "https://")):
        protocol, _, endpoint = endpoint.partition("://")
    return Config(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        endpoint=endpoint.rstrip("/"),
        protocol=protocol,
        read_timeout=int(timeout * 1000),
        connect_timeout=int(min(timeout, 5.0) * 1000),
        max_idle_conns=pool_size,
    )


def _inner(exc: BaseException) -> BaseException | None:
    inner = getattr(exc, "inner_exception", None)
    return inner if isinstance(inner, BaseException) else None


def classify(exc: Exception) -> ProviderResult:
    """A failed SDK call as an error class. A request that never left (connection refused) cannot have been
    sent; a timeout after it left may have been (`uncertain`)."""
    code: Any = getattr(exc, "code", None)
    status: Any = getattr(exc, "status_code", None)
    if isinstance(code, str) and isinstance(status, int):
        reason = f"aliyun HTTP {status} {code}: {getattr(exc, 'message', '')}"[:500]
        if code.startswith("Throttling") or status == 429:
            return ProviderResult(ErrorClass.rate_limited, error=reason)
        if code.startswith(_ACCOUNT_PREFIXES) or status in (401, 403):
            return ProviderResult(ErrorClass.account, error=reason)
        if code == "isv.MOBILE_NUMBER_ILLEGAL":
            return ProviderResult(ErrorClass.recipient_invalid, error=reason)
        return ProviderResult(ErrorClass.transient, error=reason)
    inner = _inner(exc) or exc
    if isinstance(inner, requests.exceptions.ConnectTimeout) or (
        isinstance(inner, requests.exceptions.ConnectionError)
        and "NewConnectionError" in repr(inner)
        and not isinstance(inner, requests.exceptions.ReadTimeout)
    ):
        return ProviderResult(ErrorClass.transient, error=f"cannot reach aliyun: {type(inner).__name__}")
    if isinstance(inner, requests.exceptions.Timeout):
        return ProviderResult(ErrorClass.transient, error=f"aliyun timeout: {type(inner).__name__}", uncertain=True)
    return ProviderResult(ErrorClass.transient, error=f"aliyun error: {inner!r}"[:500], uncertain=True)
