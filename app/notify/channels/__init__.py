"""Channels: one small interface, `send(message) -> ProviderResult`, for every way a message leaves.

A send never raises for a provider problem: it returns an error class the dispatcher acts on
(retry transient, rate-limited and account ones; fail invalid recipients, invalid templates and permanent
errors at once). SMS and voice reach their providers through `app.notify.providers.routing.RoutedChannel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from app.notify.models import ErrorClass


@dataclass(frozen=True)
class ChannelMessage:
    """What a channel needs to send one outbox row (a snapshot: channels never touch the session)."""

    id: int
    channel: str
    to: str
    body: str
    template: str
    params: dict[str, Any]
    attempts: int
    uncertain: bool = False
    incident_code: str | None = None
    event_id: str | None = None
    secret: str | None = None
    # The provider of the previous attempt (which one to ask whether it went through).
    provider: str | None = None
    # When the row was written: nothing sent for it can be older (a look-up after an uncertain attempt uses it).
    created_at: datetime | None = None
    # The other rows this one send carries, as (id, attempts): a group robot's bundle.
    bundle: tuple[tuple[int, int], ...] = ()

    @property
    def rows(self) -> tuple[tuple[int, int], ...]:
        """Every row this send finishes, as (id, attempts)."""
        return ((self.id, self.attempts), *self.bundle)


@dataclass(frozen=True)
class Failover:
    """A provider passed over for one send, and why (it goes on the incident's timeline)."""

    provider: str
    error_class: ErrorClass
    reason: str


@dataclass(frozen=True)
class ProviderResult:
    error_class: ErrorClass
    provider_id: str | None = None
    # True when the provider confirmed delivery in its answer (a webhook's 2xx); SMS waits for a receipt.
    delivered: bool = False
    error: str | None = None
    retry_after: float | None = None
    # The attempt may have reached the provider (a timeout): the next attempt checks before sending again.
    uncertain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # The provider that answered (the one that carried the message when ok).
    provider: str | None = None
    # The providers of the route tried before this one, in order.
    failovers: tuple[Failover, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error_class == ErrorClass.ok


class Channel(Protocol):
    def send(self, message: ChannelMessage) -> ProviderResult: ...


class ChannelUnavailable:
    """Stands in for a channel that is not configured: every send fails with a clear reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, message: ChannelMessage) -> ProviderResult:  # noqa: ARG002
        return ProviderResult(ErrorClass.permanent, error=self.reason)
