"""Routes by number prefix and failover between the providers of a route (PRODUCT.md §8).

`DUTYLINE_SMS_ROUTES=+86=aliyun,tencent;*=twilio`: a number starting +86 goes to Alibaba Cloud, then
Tencent Cloud; any other to Twilio. The longest matching prefix wins.

Failover happens inside one attempt, so a page waits for no backoff when the next provider can carry it:
rate-limited, account and transient answers go to the next provider; a transient one only after asking the
first whether it went through (an answer lost to a timeout may hide a sent message). An invalid recipient
goes to no other provider. When every provider of the route refused, the dispatcher retries the message later
(from the first provider again) or fails it, by the last error class. Each provider passed over is listed in
the result's `failovers`, for the incident's timeline.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.notify.channels import ChannelMessage, Failover, ProviderResult
from app.notify.models import ErrorClass
from app.notify.providers import Checkable, Provider

FAIL_OVER = frozenset({ErrorClass.rate_limited, ErrorClass.account, ErrorClass.transient, ErrorClass.template_invalid})
_PREFIX = re.compile(r"^(\*|\+\d{1,6})$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,15}$")


@dataclass(frozen=True)
class Route:
    prefix: str  # "+86", or "*" for every other number
    providers: tuple[str, ...]

    def matches(self, number: str) -> bool:
        return self.prefix == "*" or number.startswith(self.prefix)


def parse_routes(text: str) -> list[Route]:
    """`+86=aliyun,tencent;*=twilio` → routes, longest prefix first; a ValueError says what is wrong."""
    routes: list[Route] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        prefix, sep, names = part.partition("=")
        prefix = prefix.strip()
        providers = tuple(n.strip() for n in names.split(",") if n.strip())
        if not sep or not _PREFIX.match(prefix):
            raise ValueError(f"route {part!r}: expected <+prefix or *>=<provider>[,<provider>…]")
        if not providers or any(not _NAME.match(n) for n in providers):
            raise ValueError(f"route {part!r}: provider names are lower-case words")
        if len(set(providers)) != len(providers):
            raise ValueError(f"route {part!r}: a provider is listed twice")
        if any(r.prefix == prefix for r in routes):
            raise ValueError(f"route {part!r}: prefix {prefix} is routed twice")
        routes.append(Route(prefix, providers))
    if not routes:
        raise ValueError("no routes")
    return sorted(routes, key=lambda r: (r.prefix == "*", -len(r.prefix)))


def providers_in(routes: list[Route]) -> list[str]:
    """Every provider some route uses, in order of first use."""
    return list(dict.fromkeys(name for r in routes for name in r.providers))


class RoutedChannel:
    """The `sms` or `voice` channel: one provider after another along the number's route."""

    def __init__(
        self,
        kind: str,
        routes: list[Route],
        providers: Mapping[str, Provider],
        unavailable: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.routes = routes
        self.providers = dict(providers)
        # Provider name → why it cannot send (no credentials and no simulator, unknown name).
        self.unavailable = dict(unavailable or {})

    def route(self, number: str) -> tuple[str, ...]:
        return next((r.providers for r in self.routes if r.matches(number)), ())

    def send(self, message: ChannelMessage) -> ProviderResult:
        names = self.route(message.to)
        if not names:
            return ProviderResult(ErrorClass.permanent, error=f"no {self.kind} route for {message.to[:4]}…")
        failovers: list[Failover] = []
        last: ProviderResult | None = None
        for name in names:
            provider = self.providers.get(name)
            if provider is None:
                reason = self.unavailable.get(name, f"{name} is not a {self.kind} provider")
                last = ProviderResult(ErrorClass.permanent, error=reason, provider=name)
                failovers.append(Failover(name, ErrorClass.account, reason))
                continue
            result = dataclasses.replace(provider.send(message), provider=name)
            if result.ok or result.error_class not in FAIL_OVER:
                return dataclasses.replace(result, failovers=tuple(failovers))
            if result.error_class == ErrorClass.transient:
                found = self._ask(provider, message)
                if found is not None and found.ok and "candidates" in found.extra:
                    # Only the dispatcher can tell which of the provider's candidates is ours (by the database).
                    found = ProviderResult(ErrorClass.transient, error="the provider holds candidates", uncertain=True)
                if found is not None and found.ok:
                    return dataclasses.replace(found, provider=name, failovers=tuple(failovers))
                if found is not None and result.uncertain:
                    # It may have gone out and the provider cannot say: sending elsewhere could page twice.
                    # The row stays with this provider, flagged; its next attempt asks again first.
                    return dataclasses.replace(result, failovers=tuple(failovers))
            failovers.append(Failover(name, result.error_class, result.error or result.error_class.value))
            last = result
        assert last is not None
        # Every provider refused: the message waits (or fails) by the last answer; the earlier ones are listed.
        return dataclasses.replace(last, failovers=tuple(failovers[:-1]))

    @staticmethod
    def _ask(provider: Provider, message: ChannelMessage) -> ProviderResult | None:
        """Whether the attempt that just failed went through: None (it did not), ok, or an error (cannot tell)."""
        if not isinstance(provider, Checkable):
            return ProviderResult(ErrorClass.transient, error="the provider cannot be asked")
        try:
            return provider.went_through(message)
        except Exception as exc:
            return ProviderResult(ErrorClass.transient, error=f"cannot ask the provider: {exc!r}", uncertain=True)

    def went_through(self, message: ChannelMessage) -> ProviderResult | None:
        """Before resending a row whose last attempt may have gone out: ask the provider that had it."""
        names = (message.provider,) if message.provider else self.route(message.to)[:1]
        for name in names:
            provider = self.providers.get(name or "")
            if provider is None or not isinstance(provider, Checkable):
                return None
            found = provider.went_through(message)
            return dataclasses.replace(found, provider=name) if found is not None else None
        return None
