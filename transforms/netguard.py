"""Refusing to fetch private, loopback, link-local and other non-public addresses (SSRF guard).

A feed is untrusted input: a link to ``http://169.254.169.254/`` or ``http://10.0.0.5/admin``
must not make a worker fetch it. The guard sits in the connection itself: every connection
(every redirect hop included) resolves the host once, refuses it if any address it resolves to
is not public, and connects to the address it checked — so a DNS answer that changes between
check and connect (rebinding) cannot slip through. Hosts written as decimal, octal or hex IPv4
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``), IPv6 and IPv4-mapped IPv6 are recognised as the
addresses they are.

Private hosts are allowed only with ``--allow-private-hosts`` (local fixture sites). The
resolver and the socket connector are injectable, so tests never send a packet anywhere else.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable

Resolver = Callable[[str, int], Iterable[str]]
Connector = Callable[..., socket.socket]

_IPV4_LOOSE = re.compile(r"^(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}$", re.I)


class BlockedAddress(Exception):
    """The URL's host is, or resolves to, an address we refuse to contact."""


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({ai[4][0] for ai in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def system_connector(address: tuple[str, int], timeout, source_address=None, socket_options=None) -> socket.socket:
    from urllib3.util.connection import create_connection

    return create_connection(address, timeout, source_address=source_address, socket_options=socket_options)


def literal_ip(host: str) -> str | None:
    """The address a host names literally (any IPv4 spelling, IPv6 with or without brackets)."""
    h = host.strip().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(h.split("%", 1)[0]))
    except ValueError:
        pass
    if _IPV4_LOOSE.match(h):
        try:
            return socket.inet_ntoa(socket.inet_aton(h))  # accepts 2130706433, 0177.0.0.1, 0x7f.1
        except OSError:
            return None
    return None


def is_public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


class HostGuard:
    """Decides whether a host may be contacted and opens guarded connections."""

    def __init__(self, allow_private: bool = False, resolver: Resolver | None = None,
                 connector: Connector | None = None):
        self.allow_private = allow_private
        self.resolver = resolver or system_resolver
        self.connector = connector or system_connector

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses for ``host``; :class:`BlockedAddress` if any is not allowed."""
        literal = literal_ip(host)
        if literal is not None:
            addrs = [literal]
        else:
            name = host.lower().rstrip(".")
            if not self.allow_private and (name == "localhost" or name.endswith(".localhost")):
                raise BlockedAddress(f"{host} is a loopback name (use --allow-private-hosts for local sites)")
            addrs = list(self.resolver(host, port))
        if not addrs:
            raise OSError(f"{host} resolves to no address")
        if not self.allow_private:
            bad = [a for a in addrs if not is_public(a)]
            if bad:
                raise BlockedAddress(
                    f"{host} resolves to non-public address {', '.join(bad)}"
                    " (use --allow-private-hosts to permit private, loopback and link-local hosts)")
        return addrs

    def check(self, host: str, port: int) -> None:
        """Raise :class:`BlockedAddress` when ``host`` must not be contacted."""
        self.addresses(host, port)

    def connect(self, host: str, port: int, timeout, source_address=None, socket_options=None) -> socket.socket:
        """Connect to a checked address of ``host`` (the first that answers)."""
        last: OSError | None = None
        for addr in self.addresses(host, port):
            try:
                return self.connector((addr, port), timeout, source_address=source_address,
                                      socket_options=socket_options)
            except OSError as e:
                last = e
        raise last or OSError(f"cannot connect to {host}:{port}")
