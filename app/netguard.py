"""Outbound URLs (webhooks, group robots) must not reach inside: no loopback, private, link-local, unique-local,
multicast, unspecified or otherwise non-global address, unless the installation allows private targets.

Checked twice: when the URL is stored (`check_url`, literal addresses and what the name resolves to now) and when
it is used (`pin`): a name can be re-pointed between the two, so the sender resolves it, checks every address, and
connects to a checked address itself (the URL's host is replaced by that address; the name still goes in `Host` and
in TLS SNI, so certificates are verified against the name).

Built on `ipaddress` and `getaddrinfo` (the resolver the HTTP client would use, so every form it accepts —
`2130706433`, `0x7f.1`, `127.1`, `::ffff:127.0.0.1` — is seen as the address it is).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the host resolves to; raises OSError when it does not resolve.
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refused(ValueError):
    """The URL's target is not allowed; `reason` says why (safe to show: it names no response)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _numeric(host: str) -> list[str] | None:
    """The addresses of a numeric host in any form the C resolver accepts, without asking DNS; None for a name."""
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: str | IPAddress) -> str | None:
    """Why this address may not be a target (e.g. "loopback"), or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (
            ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        )
        if embedded is not None:
            inner = refusal(embedded)
            return f"{inner} (IPv4 inside IPv6)" if inner else None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.IPv6Network("fc00::/7"):
        return "unique-local"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class Target:
    parts: SplitResult
    host: str  # lower case, no brackets, no trailing dot
    port: int


def parse(url: str) -> Target:
    parts = _http_url(url)
    assert parts.hostname is not None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("the port is not a number from 0 to 65535") from exc
    host = unquote(parts.hostname).rstrip(".").lower()
    if ":" in host and _numeric(host) is None:
        raise Refused(f"{host} is not a valid IPv6 address")
    if host == "localhost" or host.endswith(".localhost"):
        raise Refused(f"{host} is loopback")
    return Target(parts=parts, host=host, port=port)


def _check_all(host: str, addresses: Sequence[str]) -> None:
    for address in addresses:
        reason = refusal(address)
        if reason:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise Refused(f"{shown} is {reason}; private targets are not allowed")


def _http_url(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("must be an http(s) URL with a host")
    return parts


def check_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    """At write time: the URL is http(s) and its host is not an inside address (nor resolves to one now).

    A name that does not resolve yet is accepted; `pin` checks it again when it is used."""
    _http_url(url)
    if allow_private:
        return
    target = parse(url)
    numeric = _numeric(target.host)
    if numeric is not None:
        _check_all(target.host, numeric)
        return
    try:
        addresses = resolver(target.host, target.port)
    except (OSError, UnicodeError):
        return
    _check_all(target.host, addresses)


@dataclass(frozen=True)
class Pinned:
    """How to send to a checked URL: `http.post(p.url, headers={**mine, **p.headers}, extensions=p.extensions)`."""

    url: str
    address: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def pin(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Pinned:
    """At send time: resolve the host, check every address it resolves to, and aim the request at the first.

    Raises Refused (a refused address, or a name that does not resolve)."""
    if allow_private:
        return Pinned(url=url, address=str(_http_url(url).hostname))
    target = parse(url)
    addresses = _numeric(target.host)
    if addresses is None:
        try:
            addresses = list(resolver(target.host, target.port))
        except (OSError, UnicodeError) as exc:
            raise Refused(f"{target.host} does not resolve") from exc
        if not addresses:
            raise Refused(f"{target.host} does not resolve")
    _check_all(target.host, addresses)
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    userinfo, at, _ = target.parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{literal}:{target.port}"
    pinned = target.parts._replace(netloc=netloc).geturl()
    default_port = 443 if target.parts.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:
        host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    extensions = {"sni_hostname": target.host} if target.parts.scheme == "https" and addresses != [target.host] else {}
    return Pinned(url=pinned, address=address, headers={"Host": host_header}, extensions=extensions)
