"""Stand-in for sec's URL guard until it lands: refuses literal private, loopback and link-local addresses."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from app.errors import Invalid


def check_target(url: str, *, field: str, allow_private: bool) -> None:
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise Invalid.field(field, f"{host} is a private address; not allowed")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return
    if not ip.is_global:
        raise Invalid.field(field, f"{host} is a private or reserved address; not allowed")
