"""The twilio library over httpx, with a configurable API base URL (Twilio itself or the simulator)."""

from __future__ import annotations

import functools
import logging
import ssl
import threading
from urllib.parse import urlsplit

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.notify.channels import ProviderResult
from app.notify.models import ErrorClass

log = logging.getLogger("dutyline.notify")

# Twilio error codes that say the recipient can never get this message.
INVALID_RECIPIENT_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21214,  # 'To' number cannot be reached
        21217,  # phone number does not appear to be valid
        21407,  # number not supported
        21408,  # permission to send to this region not enabled
        21610,  # recipient replied STOP (unsubscribed)
        21612,  # 'To' cannot be reached by this 'From'
        21614,  # 'To' is not a mobile number
        13223,  # voice: invalid phone number format
        13224,  # voice: invalid phone number
    }
)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # One context (and one load of the CA bundle) for every per-thread client, not one each.
    return httpx.create_ssl_context()


class HttpxTwilioClient(HttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """twilio's HttpClient interface, sending with httpx to `base_url` + the path twilio built.

    Without a given client, each sending thread gets its own small httpx.Client: one pool shared by 64
    threads spent more CPU scanning its connections (and waiting on its lock) than sending (profiled).
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, http: httpx.Client | None = None) -> None:
        super().__init__(log, is_async=False, timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self._shared = http
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        if self._shared is not None:
            return self._shared
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(limits=httpx.Limits(max_connections=2), verify=_ssl_context())
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(uri)
        url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        response = self.http.request(
            method,
            url,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        if self._shared is not None:
            self._shared.close()


def make_client(
    account_sid: str, auth_token: str, *, base_url: str, timeout: float = 10.0, http: httpx.Client | None = None
) -> Client:
    return Client(account_sid, auth_token, http_client=HttpxTwilioClient(base_url, timeout=timeout, http=http))


def classify(exc: Exception) -> ProviderResult:
    """A failed Twilio call as an error class: what can never work fails at once; the rest is retried."""
    if isinstance(exc, TwilioRestException):
        code = int(exc.code) if isinstance(exc.code, int | str) and str(exc.code).isdigit() else None
        reason = f"twilio {exc.status}" + (f" error {code}" if code else "") + f": {exc.msg}"
        if code in INVALID_RECIPIENT_CODES:
            return ProviderResult(ErrorClass.recipient_invalid, error=reason)
        if exc.status == 429:
            return ProviderResult(ErrorClass.rate_limited, error=reason)
        # 401/403 are credentials, fixable by an operator while the message waits; 5xx is Twilio's trouble.
        if exc.status in (401, 403):
            return ProviderResult(ErrorClass.account, error=reason)
        if exc.status >= 500 or exc.status == 408:
            return ProviderResult(ErrorClass.transient, error=reason)
        return ProviderResult(ErrorClass.permanent, error=reason)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        # The request never left: sending again cannot duplicate it.
        return ProviderResult(ErrorClass.transient, error=f"cannot reach the provider: {type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderResult(ErrorClass.transient, error=f"timeout: {type(exc).__name__}", uncertain=True)
    if isinstance(exc, httpx.TransportError):
        return ProviderResult(ErrorClass.transient, error=f"transport error: {exc!r}", uncertain=True)
    return ProviderResult(ErrorClass.transient, error=f"unexpected error: {exc!r}", uncertain=True)
