"""Providers: each way an SMS or a call leaves, behind the one channel interface, one module each.

A provider is a channel with a name: `send(message) -> ProviderResult`, the result per recipient with an
error class (PRODUCT.md §8). One that can tell whether an earlier attempt reached the phone (an answer lost
to a timeout) offers `went_through(message)`: an ok result (it did, with what is known of it), None (it did
not), or an error result (cannot tell now). `routing.RoutedChannel` picks providers by number prefix and
fails over between them; the dispatcher only ever sees that one channel per kind.

Every provider SDK (twilio, Alibaba Cloud's, Tencent Cloud's) is synchronous: providers run on the
dispatcher's sending threads, never on the server's event loop.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from app.notify.channels import ChannelMessage, ProviderResult


class Provider(Protocol):
    name: str

    def send(self, message: ChannelMessage) -> ProviderResult: ...


@runtime_checkable
class Checkable(Protocol):
    def went_through(self, message: ChannelMessage) -> ProviderResult | None: ...


def national(number: str, country: str = "86") -> str:
    """+8613800000000 → 13800000000: how Alibaba Cloud wants a mainland number."""
    prefix = "+" + country
    return number[len(prefix) :] if number.startswith(prefix) else number.lstrip("+")
