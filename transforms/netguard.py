"""Refusing to fetch private, loopback, link-local and other non-public addresses (SSRF guard).

A feed is untrusted input: a link to ``http://169.254.169.254/`` or ``http://10.0.0.5/admin``
must not make a worker fetch it. Every host is resolved and every address it resolves to must be
public, unless the operator allows private hosts (``--allow-private-hosts``, for local sites).
The resolver is injectable so tests never send a packet anywhere.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

Resolver = Callable[[str, int], Iterable[str]]


class BlockedAddress(Exception):
    """The URL's host is, or resolves to, an address we refuse to contact."""


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({ai[4][0] for ai in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def is_public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class HostGuard:
    """Decides whether a host may be contacted; caches answers per (host, port)."""

    def __init__(self, allow_private: bool = False, resolver: Resolver | None = None):
        self.allow_private = allow_private
        self.resolver = resolver or system_resolver
        self._ok: dict[tuple[str, int], bool] = {}

    def check(self, host: str, port: int) -> None:
        """Raise :class:`BlockedAddress` when ``host`` must not be contacted."""
        if self.allow_private:
            return
        key = (host.lower(), port)
        if self._ok.get(key):
            return
        try:
            ipaddress.ip_address(host.strip("[]"))
            addrs: Iterable[str] = [host.strip("[]")]
        except ValueError:
            if host.lower() == "localhost" or host.lower().endswith(".localhost"):
                raise BlockedAddress(f"{host} is a loopback name (use --allow-private-hosts for local sites)")
            try:
                addrs = list(self.resolver(host, port))
            except OSError as e:
                raise OSError(f"cannot resolve {host}: {e}") from e
        bad = [a for a in addrs if not is_public(a)]
        if bad or not addrs:
            raise BlockedAddress(
                f"{host} resolves to non-public address {', '.join(bad) or '(none)'}"
                " (use --allow-private-hosts to permit private, loopback and link-local hosts)"
            )
        self._ok[key] = True
