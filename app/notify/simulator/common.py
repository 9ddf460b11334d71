"""What the mainland providers' simulators share with each other and with the Twilio one.

`ProviderSim` sits on the one `SimulatorState`: every message and call goes into the same inbox with the
provider that carried it, and every send is counted by our outbox id in the same counter, so a page sent by
Alibaba Cloud and again by Tencent Cloud shows up as a duplicate just as one sent twice by Twilio does.
Faults (`PATCH /sim/config {"faults": {"aliyun": "rate_limited"|"timeout"|"down"|null, …}}`), the
per-number daily limits, and the pushes to our callbacks (JSON arrays, repeated now and then) live here.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from app.notify import message_templates
from app.notify.message_templates import Binding, TemplatesDocument

if TYPE_CHECKING:
    from app.notify.simulator.app import SimulatorState

FAULTS = ("rate_limited", "timeout", "down")
PROVIDERS = ("aliyun", "tencent", "twilio")


@functools.cache
def _demo() -> TemplatesDocument:
    # Built once: validating the whole document on every request cost the simulator milliseconds per send.
    return message_templates.demo_document()


def beijing(when: datetime) -> str:
    """`2026-12-01 16:00:00`: how Alibaba Cloud and Tencent Cloud write times (Beijing time)."""
    return (when.astimezone(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


class ProviderSim:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.daily: Counter[tuple[str, str, str]] = Counter()
        self.pushes: list[dict[str, Any]] = []
        self._templates: dict[tuple[str, str], tuple[str, Binding]] = {}
        self._templates_of: TemplatesDocument | None = None

    @property
    def config(self) -> Any:
        return self.state.config

    @property
    def lock(self) -> Any:
        return self.state.lock

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.state.messages

    def reset(self) -> None:
        self.daily.clear()
        self.pushes.clear()

    def count(self, what: str) -> None:
        with self.state.lock:
            self.state.injected[what] += 1

    def spawn(self, coro: Any) -> None:
        self.state.spawn(coro)

    # ---- the approved templates (the document the simulator was given) ----

    def template(self, provider: str, template_id: str) -> tuple[str, Binding] | None:
        """The logical template name and binding approved under `template_id` at this provider."""
        doc = self.config.templates or _demo()
        if doc is not self._templates_of:
            self._templates = {
                (p, b.template_id): (name, b) for p, book in doc.providers.items() for name, b in book.templates.items()
            }
            self._templates_of = doc
        return self._templates.get((provider, template_id))

    # ---- limits and faults ----

    def within_daily_limit(self, provider: str, phone: str) -> bool:
        """Count a send to `phone` today (Beijing); False (and not counted) past the provider's daily limit."""
        limit = (self.config.daily_limits or {}).get(provider)
        day = beijing(datetime.now(UTC))[:10]
        with self.state.lock:
            if limit is not None and self.daily[(provider, phone, day)] >= limit:
                self.state.injected[f"{provider}_daily_limit"] += 1
                return False
            self.daily[(provider, phone, day)] += 1
        return True

    async def hold(self, provider: str) -> None:
        """The "timeout" fault: the message is made, the answer held past the client's timeout."""
        self.count(f"{provider}_timeout")
        await asyncio.sleep(self.config.timeout_hold)

    async def delivery_wait(self) -> None:
        # A carrier takes a moment to deliver: a report never comes before the send's answer has been read
        # (Tencent's report names only its SerialNo, which the sender learns from that answer).
        await asyncio.sleep(max(self.config.delivery_delay, self.config.report_delay))

    def final_status(self) -> str:
        rate = self.config.undelivered_rate
        return "undelivered" if rate and self.state.rng.random() < rate else "delivered"

    # ---- the inbox ----

    def record_message(
        self, *, provider: str, sid: str, to: str, sender: str, body: str, key: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "sid": sid,
            "provider": provider,
            "to": to,
            "from": sender,
            "body": body,
            "status": "sent",
            "direction": "outbound-api",
            "segments": 1 if len(body) <= 70 else -(-len(body) // 67),
            "created": datetime.now(UTC),
            "status_callback": None,
            "key": key,
            "extra": extra,
        }
        with self.state.lock:
            self.state.messages.append(message)
            self.state.sends_by_key[key] += 1
        return message

    def record_call(
        self, *, provider: str, sid: str, to: str, sender: str, say: list[str], key: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        call: dict[str, Any] = {
            "sid": sid,
            "provider": provider,
            "to": to,
            "from": sender,
            "url": None,
            "status": "in-progress",
            "created": datetime.now(UTC),
            "status_callback": None,
            "events": [],
            "say": say,
            "gather_action": None,
            "pressed": [],
            "key": key,
            "extra": extra,
        }
        with self.state.lock:
            self.state.calls.append(call)
            self.state.sends_by_key[key] += 1
        return call

    # ---- pushes to our callbacks ----

    async def push(self, url: str | None, items: list[dict[str, Any]]) -> int | None:
        """POST a JSON array to `url`, as the providers push; with `repeat_rate`, the same array again."""
        if not url or not self.config.send_callbacks:
            return None
        status: int | None = None
        times = 2 if self.config.repeat_rate and self.state.rng.random() < self.config.repeat_rate else 1
        for _ in range(times):
            try:
                response = await self.state.http().post(url, json=items)
                status = response.status_code
            except httpx.HTTPError as exc:
                with self.state.lock:
                    self.state.callback_errors.append(f"{url}: {exc!r}")
                return None
            with self.state.lock:
                self.pushes.append({"url": url, "items": items, "status": status})
        return status
