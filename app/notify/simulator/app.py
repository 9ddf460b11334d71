"""The Twilio simulator: Messages and Calls in Twilio's REST shape, signed callbacks, phones that reply.

Mounted at `/sim` (in the demo app, or in a small standalone app for tests), so the Twilio API base URL is
`<host>/sim` and the inbox is `GET /sim/messages?to=`. Latency, failures (500/429, nothing created) and
timeouts (created, but the answer is held back past the client's timeout) are configurable, so the
pipeline's retries and its "never twice" rule can be checked. Each send is counted by its dedup key:
the outbox id our service passes in the StatusCallback (or answer) URL as `?oid=`.

The mainland providers (Alibaba Cloud SMS and voice, Tencent Cloud SMS) have a module each
(`aliyun.py`, `tencent.py`) on the same state and inbox; their APIs are served at the root path, where the
SDKs post, by `ProviderApis` (see `provider_apis`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import secrets
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from app.notify.message_templates import TemplatesDocument
from app.notify.simulator import aliyun, tencent
from app.notify.simulator.common import ProviderSim
from app.notify.simulator.robots import RobotSimulator
from app.notify.simulator.robots import router as robot_router

API = "/2010-04-01/Accounts/{account}"


def random_account_sid() -> str:
    return "AC" + secrets.token_hex(16)


def random_secret() -> str:
    return secrets.token_hex(16)


@dataclass
class SimulatorConfig:
    # Never a constant: whoever knows the auth token can forge X-Twilio-Signature on our callbacks.
    # Mounted in the app, both come from the database (`app.notify.simulator.credentials`).
    account_sid: str = field(default_factory=random_account_sid)
    auth_token: str = field(default_factory=random_secret, repr=False)
    # Standalone (tests, drills, benchmarks): the bearer token its phone-side controls need.
    control_token: str = field(default_factory=random_secret, repr=False)
    service_number: str = "+15005550006"  # the "Twilio number" phones reply to
    latency: float = 0.0
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hold: float = 3.0
    undelivered_rate: float = 0.0
    delivery_delay: float = 0.0
    send_callbacks: bool = True
    inbound_url: str | None = None
    invalid_numbers: set[str] = field(default_factory=set)
    seed: int | None = None
    # The mainland providers: the key pairs their SDKs must sign with, and where their pushes go.
    # Random too (mounted: derived from the database like the Twilio ones, `credentials.aliyun/tencent`).
    aliyun_access_key_id: str = field(default_factory=lambda: "LTAI5t" + secrets.token_hex(9))
    aliyun_access_key_secret: str = field(default_factory=random_secret, repr=False)
    tencent_secret_id: str = field(default_factory=lambda: "AKID" + secrets.token_hex(16))
    tencent_secret_key: str = field(default_factory=random_secret, repr=False)
    tencent_sdk_app_id: str = "1400000000"
    aliyun_sms_report_url: str | None = None
    aliyun_sms_up_url: str | None = None
    aliyun_voice_report_url: str | None = None
    tencent_sms_status_url: str | None = None
    tencent_sms_reply_url: str | None = None
    # Provider → "rate_limited" | "timeout" | "down" (None: healthy).
    faults: dict[str, str | None] = field(default_factory=dict)
    # Provider → sends per number per (Beijing) day before it answers with its daily-limit code.
    daily_limits: dict[str, int] = field(default_factory=dict)
    # Chance that a push (receipt, reply) is sent twice, as the providers do now and then.
    repeat_rate: float = 0.0
    # Least seconds between a mainland send and its receipt.
    report_delay: float = 0.3
    # The approved templates (None: the demo document).
    templates: TemplatesDocument | None = None

    # A harness that runs the standalone simulator in another process hands it the credentials this way.
    ENV: ClassVar[dict[str, str]] = {
        "account_sid": "SIM_ACCOUNT_SID",
        "auth_token": "SIM_AUTH_TOKEN",
        "control_token": "SIM_CONTROL_TOKEN",
        "aliyun_access_key_id": "SIM_ALIYUN_ACCESS_KEY_ID",
        "aliyun_access_key_secret": "SIM_ALIYUN_ACCESS_KEY_SECRET",
        "tencent_secret_id": "SIM_TENCENT_SECRET_ID",
        "tencent_secret_key": "SIM_TENCENT_SECRET_KEY",
    }

    def credentials_env(self) -> dict[str, str]:
        return {var: str(getattr(self, name)) for name, var in self.ENV.items()}

    @classmethod
    def from_env(cls, **options: Any) -> SimulatorConfig:
        """A config with the credentials of `credentials_env()` (from os.environ) and the given options."""
        given = {name: os.environ[var] for name, var in cls.ENV.items() if os.environ.get(var)}
        return cls(**(given | options))


class SimulatorState:
    """Everything the simulator has seen; read from test threads, written on the server's loop."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.rng = random.Random(config.seed)
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.inbound: list[dict[str, Any]] = []
        self.sends_by_key: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.callback_errors: list[str] = []
        # Send requests still being handled (a held "timeout" included): what Twilio is still working on.
        self.requests_in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self.providers = ProviderSim(self)

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.calls.clear()
            self.inbound.clear()
            self.sends_by_key.clear()
            self.injected.clear()
            self.callback_errors.clear()
            self.providers.reset()

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        return self._http

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending_tasks(self) -> int:
        return len(self._tasks)

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {k: n for k, n in self.sends_by_key.items() if n > 1}

    def sign(self, url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.config.auth_token).compute_signature(url, params))

    async def post_signed(self, url: str, params: dict[str, str]) -> httpx.Response | None:
        headers = {"X-Twilio-Signature": self.sign(url, params)}
        try:
            return await self.http().post(url, data=params, headers=headers)
        except httpx.HTTPError as exc:
            with self.lock:
                self.callback_errors.append(f"{url}: {exc!r}")
            return None


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _rfc2822(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def _oid(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("oid")
    return values[0] if values else None


def _error(status: int, code: int, message: str) -> JSONResponse:
    more = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more, "status": status}
    return JSONResponse(body, status_code=status)


def _authorized(request: Request, state: SimulatorState, account: str) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    cfg = state.config
    return account == cfg.account_sid and user == cfg.account_sid and secrets.compare_digest(password, cfg.auth_token)


def _message_json(m: dict[str, Any], account: str) -> dict[str, Any]:
    return {
        "sid": m["sid"],
        "account_sid": account,
        "to": m["to"],
        "from": m["from"],
        "body": m["body"],
        "status": m["status"],
        "direction": m["direction"],
        "num_segments": str(m["segments"]),
        "num_media": "0",
        "date_created": _rfc2822(m["created"]),
        "date_updated": _rfc2822(m["created"]),
        "date_sent": None,
        "error_code": m.get("error_code"),
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "api_version": "2010-04-01",
        "messaging_service_sid": None,
        "uri": f"/2010-04-01/Accounts/{account}/Messages/{m['sid']}.json",
        "subresource_uris": {},
    }


def _call_json(c: dict[str, Any], account: str) -> dict[str, Any]:
    return {
        "sid": c["sid"],
        "account_sid": account,
        "to": c["to"],
        "from": c["from"],
        "status": c["status"],
        "direction": "outbound-api",
        "date_created": _rfc2822(c["created"]),
        "date_updated": _rfc2822(c["created"]),
        "start_time": _rfc2822(c["started"]) if c.get("started") else None,
        "end_time": None,
        "duration": None,
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account}/Calls/{c['sid']}.json",
        "subresource_uris": {},
    }


def _segments(body: str) -> int:
    if all(ord(ch) < 128 for ch in body):
        return 1 if len(body) <= 160 else -(-len(body) // 153)
    return 1 if len(body) <= 70 else -(-len(body) // 67)


def _twiml_parts(xml: str) -> tuple[list[str], list[str], str | None]:
    """(<Message> texts, <Say> texts, <Gather action>) of a TwiML document."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return [], [], None
    messages = [el.text or "" for el in root.iter("Message")]
    says = [el.text or "" for el in root.iter("Say")]
    gather = next(iter(root.iter("Gather")), None)
    return messages, says, gather.get("action") if gather is not None else None


START_FILTERS = {"StartTime": "=", "StartTime<": "<", "StartTime>": ">"}


def _start_bound(value: str) -> tuple[datetime, bool]:
    """(the time, whether only a date was given) of a StartTime filter."""
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC), True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), False


def _started_within(started: datetime | None, op: str, bound: tuple[datetime, bool]) -> bool:
    """Twilio's semantics: `=` the same day, `<` on or before, `>` on or after (a date means that whole day)."""
    if started is None:
        return False
    when, date_only = bound
    if op == "=":
        return started.date() == when.date() if date_only else started == when
    if op == "<":
        return started.date() <= when.date() if date_only else started <= when
    return started >= when


class Digits(BaseModel):
    digits: str


Fault = Literal["rate_limited", "timeout", "down"]


CallbackName = Literal[
    "aliyun_sms_report_url", "aliyun_sms_up_url", "aliyun_voice_report_url", "tencent_sms_status_url",
    "tencent_sms_reply_url",
]  # fmt: skip


class ConfigPatch(BaseModel):
    # Where the mainland providers' pushes go (a standalone simulator does not know our URLs).
    callbacks: dict[CallbackName, str] | None = None
    faults: dict[Literal["aliyun", "tencent", "twilio"], Fault | None] | None = None
    daily_limits: dict[Literal["aliyun", "tencent"], int | None] | None = None
    repeat_rate: float | None = None
    latency: float | None = None
    failure_rate: float | None = None
    timeout_rate: float | None = None
    timeout_hold: float | None = None
    undelivered_rate: float | None = None
    delivery_delay: float | None = None
    send_callbacks: bool | None = None
    # Not `inbound_url`: where the simulator posts signed replies is fixed by the app (or the test harness),
    # never pointed elsewhere over HTTP.


# A FastAPI dependency (sync or async) that raises HTTPException to refuse.
Guard = Callable[..., Any]


def control_token_guard(state: SimulatorState) -> Guard:
    """The standalone simulator's controls: `Authorization: Bearer <control_token>`."""

    async def guard(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.encode(), state.config.control_token.encode()
        ):
            raise HTTPException(401, "the simulator's controls need its control token", {"WWW-Authenticate": "Bearer"})

    return guard


def create_simulator(config: SimulatorConfig | None = None, *, guard: Guard | None = None) -> FastAPI:
    """The simulator app (mount it at /sim). Its state is at `app.state.sim`.

    The provider-facing API authenticates like Twilio (HTTP Basic with the account SID and auth token);
    the phones' side (inbox, replies, keypresses, stats, reset, config) passes `guard` first, by default the
    simulator's own control token. Mounted in the app, the guard asks for a signed-in admin."""
    state = SimulatorState(config or SimulatorConfig())
    app = FastAPI(title="Twilio simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = state
    router = APIRouter()
    controls_guard = guard or control_token_guard(state)
    controls = APIRouter(dependencies=[Depends(controls_guard)])

    async def _inject(kind: str) -> JSONResponse | None:
        cfg = state.config
        if cfg.latency:
            await asyncio.sleep(cfg.latency)
        fault = cfg.faults.get("twilio")
        if fault in ("down", "rate_limited"):
            with state.lock:
                state.injected[f"twilio_{fault}"] += 1
            return (
                _error(429, 20429, "Too Many Requests")
                if fault == "rate_limited"
                else _error(503, 20503, "Service Unavailable")
            )
        if cfg.failure_rate and state.rng.random() < cfg.failure_rate:
            with state.lock:
                state.injected[f"{kind}_failure"] += 1
            if state.rng.random() < 0.3:
                return _error(429, 20429, "Too Many Requests")
            return _error(503, 20503, "Service Unavailable")
        return None

    async def _hold_if_timeout(kind: str) -> None:
        cfg = state.config
        if cfg.faults.get("twilio") == "timeout" or (cfg.timeout_rate and state.rng.random() < cfg.timeout_rate):
            with state.lock:
                state.injected[f"{kind}_timeout"] += 1
            await asyncio.sleep(cfg.timeout_hold)

    async def _deliver(message: dict[str, Any]) -> None:
        cfg = state.config
        if cfg.delivery_delay:
            await asyncio.sleep(cfg.delivery_delay)
        final = "undelivered" if cfg.undelivered_rate and state.rng.random() < cfg.undelivered_rate else "delivered"
        for status in ("sent", final):
            message["status"] = status
            if final == "undelivered":
                message["error_code"] = 30003
            if not (cfg.send_callbacks and message["status_callback"]):
                continue
            params = {
                "MessageSid": message["sid"],
                "SmsSid": message["sid"],
                "AccountSid": cfg.account_sid,
                "From": message["from"],
                "To": message["to"],
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": "2010-04-01",
            }
            if status == "undelivered":
                params["ErrorCode"] = "30003"
            await state.post_signed(message["status_callback"], params)

    async def _in_flight() -> AsyncIterator[None]:
        with state.lock:
            state.requests_in_flight += 1
        try:
            yield
        finally:
            with state.lock:
                state.requests_in_flight -= 1

    @router.post(API + "/Messages.json", status_code=201, dependencies=[Depends(_in_flight, scope="function")])
    async def create_message(account: str, request: Request) -> Any:
        if not _authorized(request, state, account):
            return _error(401, 20003, "Authenticate")
        failed = await _inject("message")
        if failed is not None:
            return failed
        form = await request.form()
        to, body = str(form.get("To", "")), str(form.get("Body", ""))
        if not to.startswith("+") or not to[1:].isdigit() or to in state.config.invalid_numbers:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        callback = str(form["StatusCallback"]) if form.get("StatusCallback") else None
        message: dict[str, Any] = {
            "sid": _sid("SM"),
            "provider": "twilio",
            "to": to,
            "from": str(form.get("From", "")),
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "segments": _segments(body),
            "created": datetime.now(UTC),
            "status_callback": callback,
            "key": _oid(callback),
        }
        with state.lock:
            state.messages.append(message)
            state.sends_by_key[message["key"] or message["sid"]] += 1
        state.spawn(_deliver(message))
        await _hold_if_timeout("message")
        return _message_json(message, account)

    @router.get(API + "/Messages.json")
    async def list_messages(account: str, request: Request) -> Any:
        if not _authorized(request, state, account):
            return _error(401, 20003, "Authenticate")
        to, sender = request.query_params.get("To"), request.query_params.get("From")
        size = int(request.query_params.get("PageSize", "50"))
        with state.lock:
            found = [
                m
                for m in reversed(state.messages)
                if (to is None or m["to"] == to) and (sender is None or m["from"] == sender)
            ][:size]
        uri = f"/2010-04-01/Accounts/{account}/Messages.json"
        return {
            "messages": [_message_json(m, account) for m in found],
            "page": 0,
            "page_size": size,
            "first_page_uri": uri,
            "previous_page_uri": None,
            "next_page_uri": None,
            "uri": uri,
        }

    async def _answer(call: dict[str, Any]) -> None:
        cfg = state.config
        if cfg.delivery_delay:
            await asyncio.sleep(cfg.delivery_delay)
        call["started"] = datetime.now(UTC)  # dialed: from now on it has a start time
        params = {
            "CallSid": call["sid"],
            "AccountSid": cfg.account_sid,
            "From": call["from"],
            "To": call["to"],
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
        }
        response = await state.post_signed(call["url"], params)
        if response is None or response.status_code != 200:
            call["status"] = "failed"
            await _call_status(call, "failed", "completed")
            return
        _, says, action = _twiml_parts(response.text)
        call.update(status="in-progress", say=says, gather_action=action)
        await _call_status(call, "in-progress", "answered")

    async def _call_status(call: dict[str, Any], status: str, event: str) -> None:
        if not (state.config.send_callbacks and call["status_callback"]) or event not in call["events"]:
            return
        params = {
            "CallSid": call["sid"],
            "AccountSid": state.config.account_sid,
            "From": call["from"],
            "To": call["to"],
            "CallStatus": status,
            "ApiVersion": "2010-04-01",
        }
        await state.post_signed(call["status_callback"], params)

    @router.post(API + "/Calls.json", status_code=201, dependencies=[Depends(_in_flight, scope="function")])
    async def create_call(account: str, request: Request) -> Any:
        if not _authorized(request, state, account):
            return _error(401, 20003, "Authenticate")
        failed = await _inject("call")
        if failed is not None:
            return failed
        form = await request.form()
        to = str(form.get("To", ""))
        if not to.startswith("+") or not to[1:].isdigit() or to in state.config.invalid_numbers:
            return _error(400, 13224, f"Invalid phone number {to}")
        url = str(form.get("Url", ""))
        call: dict[str, Any] = {
            "sid": _sid("CA"),
            "provider": "twilio",
            "to": to,
            "from": str(form.get("From", "")),
            "url": url,
            "status": "queued",
            "created": datetime.now(UTC),
            "status_callback": str(form["StatusCallback"]) if form.get("StatusCallback") else None,
            "events": [str(e) for e in form.getlist("StatusCallbackEvent")] or ["completed"],
            "say": [],
            "gather_action": None,
            "pressed": [],
            "key": _oid(url),
        }
        with state.lock:
            state.calls.append(call)
            state.sends_by_key[call["key"] or call["sid"]] += 1
        state.spawn(_answer(call))
        await _hold_if_timeout("call")
        return _call_json(call, account)

    @router.get(API + "/Calls.json")
    async def list_calls(account: str, request: Request) -> Any:
        """Twilio's Calls list: newest first, filtered by To, From, Status and StartTime (`StartTime`,
        `StartTime<`, `StartTime>`: a date `YYYY-MM-DD` or a time; a call not yet dialed has no start time)."""
        if not _authorized(request, state, account):
            return _error(401, 20003, "Authenticate")
        q = request.query_params
        to, sender, status = q.get("To"), q.get("From"), q.get("Status")
        try:
            size = min(1000, max(1, int(q.get("PageSize", "50"))))
            bounds = {op: _start_bound(q[name]) for name, op in START_FILTERS.items() if q.get(name)}
        except ValueError as exc:
            return _error(400, 20001, f"Invalid parameter: {exc}")
        with state.lock:
            found = [
                c
                for c in reversed(state.calls)
                if (to is None or c["to"] == to)
                and (sender is None or c["from"] == sender)
                and (status is None or c["status"] == status)
                and all(_started_within(c.get("started"), op, bound) for op, bound in bounds.items())
            ][:size]
        uri = f"/2010-04-01/Accounts/{account}/Calls.json"
        return {
            "calls": [_call_json(c, account) for c in found],
            "page": 0,
            "page_size": size,
            "first_page_uri": uri,
            "previous_page_uri": None,
            "next_page_uri": None,
            "uri": uri,
        }

    # ---- the phones' side ----

    @controls.get("/messages")
    async def inbox(to: str | None = None) -> list[dict[str, Any]]:
        """Messages sent to phones (to one phone with ?to=), oldest first."""
        with state.lock:
            found = [m for m in state.messages if to is None or m["to"] == to]
        return [{k: v for k, v in m.items() if k != "created"} | {"created": m["created"].isoformat()} for m in found]

    @controls.post("/messages")
    async def phone_replies(reply: dict[str, str]) -> dict[str, Any]:
        """A phone sends an SMS to the service number: signed like Twilio and posted to the inbound URL.
        A TwiML <Message> in the answer becomes an SMS back to that phone, as Twilio would send it."""
        cfg = state.config
        phone, body = reply["from"], reply.get("body", "")
        with state.lock:
            last = next((m for m in reversed(state.messages) if m["to"] == phone), None)
        if last is not None and last.get("provider") in ("aliyun", "tencent"):
            # A mainland phone answers the provider that texted it; the confirmation comes as a new SMS.
            module = aliyun if last["provider"] == "aliyun" else tencent
            with state.lock:
                state.inbound.append({"provider": last["provider"], "From": phone, "Body": body})
            status = await module.reply(state.providers, phone, body, last["from"])
            return {"status": status, "replies": [], "provider": last["provider"]}
        if not cfg.inbound_url:
            return {"status": None, "replies": [], "error": "no inbound_url configured"}
        params = {
            "MessageSid": _sid("SM"),
            "SmsSid": "",
            "AccountSid": cfg.account_sid,
            "From": phone,
            "To": cfg.service_number,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        params["SmsSid"] = params["MessageSid"]
        with state.lock:
            state.inbound.append(params)
        response = await state.post_signed(cfg.inbound_url, params)
        if response is None:
            return {"status": None, "replies": []}
        texts, _, _ = _twiml_parts(response.text) if response.status_code == 200 else ([], [], None)
        for text in texts:
            message: dict[str, Any] = {
                "sid": _sid("SM"),
                "to": phone,
                "from": cfg.service_number,
                "body": text,
                "status": "delivered",
                "direction": "outbound-reply",
                "segments": _segments(text),
                "created": datetime.now(UTC),
                "status_callback": None,
                "key": f"reply:{params['MessageSid']}",
            }
            with state.lock:
                state.messages.append(message)
                state.sends_by_key[message["key"]] += 1
        return {"status": response.status_code, "replies": texts}

    @controls.get("/calls")
    async def calls(to: str | None = None) -> list[dict[str, Any]]:
        with state.lock:
            found = [c for c in state.calls if to is None or c["to"] == to]
        return [{k: v for k, v in c.items() if k != "created"} | {"created": c["created"].isoformat()} for c in found]

    @controls.post("/calls/{sid}/digits")
    async def press(sid: str, data: Digits) -> dict[str, Any]:
        """The callee presses keys: posted (signed) to the call's <Gather action>; the call then ends."""
        with state.lock:
            call = next((c for c in state.calls if c["sid"] == sid), None)
        if call is None:
            return JSONResponse({"error": "no such call"}, status_code=404)  # type: ignore[return-value]
        if call.get("provider") == "aliyun":
            return await aliyun.press(state.providers, call, data.digits)
        if not call["gather_action"]:
            return {"status": None, "say": [], "error": "the call is not waiting for keys"}
        params = {
            "CallSid": call["sid"],
            "AccountSid": state.config.account_sid,
            "From": call["from"],
            "To": call["to"],
            "Digits": data.digits,
            "CallStatus": "in-progress",
            "ApiVersion": "2010-04-01",
        }
        call["pressed"].append(data.digits)
        response = await state.post_signed(call["gather_action"], params)
        says = _twiml_parts(response.text)[1] if response is not None and response.status_code == 200 else []
        call["status"] = "completed"
        await _call_status(call, "completed", "completed")
        return {"status": response.status_code if response else None, "say": says}

    @controls.post("/calls/{sid}/hangup")
    async def hang_up(sid: str, answered: bool = False) -> dict[str, Any]:
        """The callee does not answer (or hangs up without a key): an Alibaba Cloud call's receipt says so."""
        with state.lock:
            call = next((c for c in state.calls if c["sid"] == sid), None)
        if call is None or call.get("provider") != "aliyun":
            return JSONResponse({"error": "no such Alibaba Cloud call"}, status_code=404)  # type: ignore[return-value]
        return await aliyun.hang_up(state.providers, call, answered=answered)

    @controls.get("/stats")
    async def stats() -> dict[str, Any]:
        with state.lock:
            return {
                "messages": len(state.messages),
                "calls": len(state.calls),
                "sends_by_key": dict(state.sends_by_key),
                "duplicates": {k: n for k, n in state.sends_by_key.items() if n > 1},
                "injected": dict(state.injected),
                "callback_errors": list(state.callback_errors),
                "by_provider": dict(Counter(m.get("provider", "twilio") for m in state.messages)),
                "pushes": len(state.providers.pushes),
            }

    @controls.post("/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @controls.patch("/config")
    async def configure(patch: ConfigPatch) -> dict[str, Any]:
        changes = patch.model_dump(exclude_unset=True)
        for name, url in (changes.pop("callbacks", None) or {}).items():
            setattr(state.config, name, url)
        for key in ("faults", "daily_limits"):
            if changes.get(key) is not None:
                merged = {**getattr(state.config, key), **changes.pop(key)}
                setattr(state.config, key, {k: v for k, v in merged.items() if v is not None})
            changes.pop(key, None)
        for key, value in changes.items():
            if value is not None:
                setattr(state.config, key, value)
        hidden = {
            "auth_token",
            "control_token",
            "invalid_numbers",
            "aliyun_access_key_secret",
            "tencent_secret_key",
            "templates",
        }
        return {k: v for k, v in vars(state.config).items() if k not in hidden and not k.endswith("_url")}

    app.include_router(router)
    app.include_router(controls)
    app.state.robots = RobotSimulator()
    app.include_router(robot_router(app.state.robots, guard=controls_guard))
    return app


async def _provider_call(request: StarletteRequest, state: SimulatorState) -> Response:
    if request.headers.get("x-acs-action"):
        return await aliyun.handle(request, state.providers)
    return await tencent.handle(request, state.providers)


class ProviderApis:
    """ASGI middleware: a request to the root path carrying `x-acs-action` (Alibaba Cloud) or `X-TC-Action`
    (Tencent Cloud) is an SDK call for the simulator; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and scope["method"] in ("POST", "GET"):
            names = {k for k, _ in scope["headers"]}
            if b"x-acs-action" in names or b"x-tc-action" in names:
                response = await _provider_call(StarletteRequest(scope, receive), self.state)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def standalone(config: SimulatorConfig | None = None) -> tuple[Starlette, SimulatorState]:
    """The simulator mounted at /sim in an app of its own (what the tests and the benchmark serve), the
    mainland providers' APIs at its root."""
    sim = create_simulator(config)
    state: SimulatorState = sim.state.sim
    outer = Starlette(routes=[Mount("/sim", app=sim)])
    outer.add_middleware(ProviderApis, state=state)
    return outer, state
