"""Which client a request comes from, for the rate limits: the real peer, unless the operator trusts proxies.

uvicorn's proxy-headers middleware is on by default and trusts ``127.0.0.1``: it replaces ``scope["client"]`` with an
address taken from ``X-Forwarded-For``, so any local process (or a proxy that passes the header on unchecked) would
choose the key the limiters count under, and so escape them. The middleware leaves no trace of the peer it replaced.
What it does leave: the address it wrote comes from the header. So when the scope's client host is one of the
request's ``X-Forwarded-For`` hosts, the real peer was a host uvicorn trusts, and, unless the gateway is told to
trust proxies too, all such requests share one key (``FORWARDED``): the budget of the proxy they came through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .asgi import Scope

FORWARDED = "forwarded-by-a-trusted-proxy"
"""The key of requests whose address a proxy-headers middleware may have taken from ``X-Forwarded-For``."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _host(entry: str) -> str:
    """The host of one ``X-Forwarded-For`` entry (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``)."""
    entry = entry.strip()
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def forwarded_entries(scope: Scope) -> list[str]:
    """The entries of every ``X-Forwarded-For`` header of the request, as written, left (client) to right."""
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"x-forwarded-for"]
    return [e.strip() for e in ",".join(values).split(",") if e.strip()]


def forwarded_hosts(scope: Scope) -> list[str]:
    """The hosts of every ``X-Forwarded-For`` header of the request, left (client) to right (last proxy)."""
    return [_host(e) for e in forwarded_entries(scope)]


def _from_header(host: object, scope: Scope) -> bool:
    """Whether a proxy-headers middleware may have written ``host`` from the request's ``X-Forwarded-For``: it is
    one of its hosts, one of its entries as written (older uvicorn keeps a port), or nothing (older uvicorn writes
    None when every entry is a host it trusts)."""
    entries = forwarded_entries(scope)
    if not entries:
        return False
    return host is None or host in entries or host in [_host(e) for e in entries]


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` the gateway believes (addresses or networks); none by default."""

    __slots__ = ("_networks",)

    def __init__(self, proxies: Iterable[str] = ()) -> None:
        self._networks: tuple[Network, ...] = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def client(self, scope: Scope) -> str:
        """The key the rate limits count this request under."""
        client = scope.get("client")
        if not self._networks:
            peer = client[0] if client else "-"
            return FORWARDED if _from_header(peer, scope) else str(peer)
        host = str(client[0]) if client else "-"
        hosts = forwarded_hosts(scope)
        while host in self and hosts:  # walk back through the proxies we trust, nearest first
            host = hosts.pop()
        return host
