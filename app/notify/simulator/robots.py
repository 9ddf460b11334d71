"""Group robots as their servers answer: WeCom's `/cgi-bin/webhook/send?key=` and DingTalk's `/robot/send`.

Mounted under the simulator (`/sim/robots/...`). A robot is made as in the group's settings, by
`POST /sim/robots` `{"kind": "dingtalk"|"wecom"}`, which answers its webhook URL (and DingTalk's secret).
A DingTalk post must be signed: `timestamp` (ms, within an hour of the simulator's clock) and `sign` =
base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")) or it gets errcode 310000; more than 20 posts to a robot
in a minute get DingTalk's 130101 or WeCom's 45009. Every accepted post is in the inbox, `GET /sim/robots/messages`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import Mount

WINDOW_SECONDS = 60.0
LIMIT = 20
SIGN_TOLERANCE_MS = 3_600_000  # DingTalk refuses a timestamp more than an hour off


def _real_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Robot:
    kind: str
    token: str
    secret: str | None
    sent_at: list[float] = field(default_factory=list)


class RobotSimulator:
    """The robots' side: which robots exist, what they accepted and refused. Thread-safe."""

    def __init__(self, *, now: Callable[[], datetime] = _real_now) -> None:
        self.now = now
        self.lock = threading.Lock()
        self.robots: dict[tuple[str, str], Robot] = {}
        self.messages: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.fault: str | None = None  # "down": 503 to everything

    def reset(self) -> None:
        with self.lock:
            self.robots.clear()
            self.messages.clear()
            self.refused.clear()
            self.fault = None

    def make(self, kind: str, send_url: str) -> dict[str, str | None]:
        """A new robot: its webhook URL and (DingTalk) signing secret, as the group settings show them."""
        token = secrets.token_hex(32)
        secret = "SEC" + secrets.token_hex(32) if kind == "dingtalk" else None
        with self.lock:
            self.robots[(kind, token)] = Robot(kind, token, secret)
        param = "access_token" if kind == "dingtalk" else "key"
        return {"kind": kind, "webhook_url": f"{send_url}?{param}={token}", "secret": secret}

    def inbox(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages if kind is None or m["kind"] == kind]

    def _accept(self, robot: Robot, body: dict[str, Any], *, verified: bool) -> dict[str, Any]:
        """Within the robot's limit: the post goes in the inbox; else the robot's "too many" answer."""
        now = self.now().timestamp()
        with self.lock:
            robot.sent_at = [t for t in robot.sent_at if now - t < WINDOW_SECONDS]
            if len(robot.sent_at) >= LIMIT:
                self.refused.append({"kind": robot.kind, "token": robot.token, "reason": "too many", "at": now})
                if robot.kind == "dingtalk":
                    return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
                return {"errcode": 45009, "errmsg": "api freq out of limit"}
            robot.sent_at.append(now)
            text = body.get("text") or {}
            if robot.kind == "dingtalk":
                mentions = list((body.get("at") or {}).get("atMobiles") or [])
            else:
                mentions = list(text.get("mentioned_mobile_list") or [])
            self.messages.append(
                {
                    "kind": robot.kind,
                    "token": robot.token,
                    "msgtype": body.get("msgtype"),
                    "content": text.get("content", ""),
                    "mentions": mentions,
                    "verified": verified,
                    "at": self.now().isoformat(),
                }
            )
        return {"errcode": 0, "errmsg": "ok"}


def dingtalk_signature(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class RobotRequest(BaseModel):
    kind: Literal["wecom", "dingtalk"]


def router(sim: RobotSimulator, *, guard: Callable[..., Any] | None = None) -> APIRouter:
    """The robots' API, under `/robots`; their inbox and the way to make a robot behind `guard` (the
    simulator's controls: only its operator may read what the groups got or make robots)."""
    api = APIRouter()
    controls = APIRouter(dependencies=[Depends(guard)] if guard else [])

    def _refuse(kind: str, reason: str, answer: dict[str, Any]) -> dict[str, Any]:
        with sim.lock:
            sim.refused.append({"kind": kind, "reason": reason, "at": sim.now().timestamp()})
        return answer

    async def _json(request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) and body.get("msgtype") else None

    @api.post("/robots/dingtalk/robot/send", response_model=None)
    async def dingtalk(request: Request) -> Any:
        if sim.fault == "down":
            return _down()
        query = request.query_params
        with sim.lock:
            robot = sim.robots.get(("dingtalk", query.get("access_token", "")))
        if robot is None:
            return _refuse("dingtalk", "token", {"errcode": 300001, "errmsg": "token is not exist"})
        timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
        # Starlette has already URL-decoded `sign` once, as DingTalk's server does.
        fresh = timestamp.isdigit() and abs(int(timestamp) - sim.now().timestamp() * 1000) <= SIGN_TOLERANCE_MS
        if not (robot.secret and fresh and hmac.compare_digest(sign, dingtalk_signature(robot.secret, timestamp))):
            reason = "sign not match" if fresh else "invalid timestamp"
            return _refuse("dingtalk", reason, {"errcode": 310000, "errmsg": f"{reason}, more: [sign]"})
        body = await _json(request)
        if body is None:
            return _refuse("dingtalk", "body", {"errcode": 40035, "errmsg": "缺少参数 json"})
        return sim._accept(robot, body, verified=True)

    @api.post("/robots/wecom/cgi-bin/webhook/send", response_model=None)
    async def wecom(request: Request) -> Any:
        if sim.fault == "down":
            return _down()
        with sim.lock:
            robot = sim.robots.get(("wecom", request.query_params.get("key", "")))
        if robot is None:
            return _refuse("wecom", "key", {"errcode": 93000, "errmsg": "invalid webhook url"})
        body = await _json(request)
        if body is None:
            return _refuse("wecom", "body", {"errcode": 40008, "errmsg": "invalid message type"})
        return sim._accept(robot, body, verified=False)

    @controls.post("/robots")
    async def make(data: RobotRequest, request: Request) -> dict[str, str | None]:
        """Make a robot (as a group's settings do): its webhook URL and secret."""
        return sim.make(data.kind, str(request.url_for(data.kind)))

    @controls.get("/robots/messages")
    async def inbox(kind: str | None = None) -> list[dict[str, Any]]:
        """What the groups have received, oldest first."""
        return sim.inbox(kind)

    api.include_router(controls)
    return api


def _down() -> JSONResponse:
    return JSONResponse({"errcode": -1, "errmsg": "system busy"}, status_code=503)


def standalone(sim: RobotSimulator | None = None) -> tuple[Starlette, RobotSimulator]:
    """The robots alone, mounted at /sim (for tests)."""
    sim = sim or RobotSimulator()
    app = FastAPI(title="Robot simulator")
    app.include_router(router(sim))
    return Starlette(routes=[Mount("/sim", app=app)]), sim
