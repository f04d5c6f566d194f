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

A name lookup cannot be interrupted (``getaddrinfo`` blocks its thread until the resolver gives
up, which can take far longer than a fetch may). Given a time limit, the guard runs the lookup in
one of a few shared threads (:class:`LookupThreads`) and stops waiting when the time is up
(:class:`ResolveTimeout`); the lookup itself goes on in its thread and its answer is dropped.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

Resolver = Callable[[str, int], Iterable[str]]
Connector = Callable[..., socket.socket]

_IPV4_LOOSE = re.compile(r"^(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}$", re.I)


class BlockedAddress(Exception):
    """The URL's host is, or resolves to, an address we refuse to contact."""


class ResolveTimeout(Exception):
    """A host name did not resolve within the time it was given. Deliberately not an
    ``OSError``: the HTTP layer must not take it for a connection failure and retry."""


class _Lookup:
    """One name lookup, shared by every caller that asks for the same name meanwhile."""

    def __init__(self, key: tuple, resolver: Resolver, host: str, port: int):
        self.key = key
        self.resolver, self.host, self.port = resolver, host, port
        self.done = threading.Event()
        self.result: list[str] = []
        self.error: BaseException | None = None
        self.waiting = 0  # callers still waiting for the answer


class LookupThreads:
    """Runs name lookups in at most ``size`` daemon threads, so that callers can give up waiting.

    A lookup that hangs keeps its thread until the resolver returns; there are never more than
    ``size`` such threads, however many callers gave up. Callers asking for a name whose lookup is
    already queued or running wait for that one instead of starting another (a hanging name takes
    one thread, not one per page). A queued lookup whose callers all gave up is dropped unrun.
    Threads left idle for ``linger`` seconds end. Lookups that do not hang cost a queue hand-off,
    not a thread start."""

    def __init__(self, size: int = 16, linger: float = 30.0):
        self.size = size
        self.linger = linger
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cv = threading.Condition()
        self._queue: deque[_Lookup] = deque()
        self._running: dict[tuple, _Lookup] = {}  # queued or running, by (resolver, host, port)
        self._threads = 0
        self._idle = 0

    @property
    def threads(self) -> int:
        """Threads alive now (waiting for work, or inside a lookup)."""
        return self._threads

    def resolve(self, resolver: Resolver, host: str, port: int, timeout: float) -> list[str]:
        """``resolver(host, port)`` as a list, or :class:`ResolveTimeout` after ``timeout`` seconds;
        an exception the resolver raises is raised here."""
        if self._pid != os.getpid():  # a forked child has none of the parent's threads
            self._reset()
        key = (resolver, host, port)
        with self._cv:
            job = self._running.get(key)
            if job is None:
                job = self._running[key] = _Lookup(key, resolver, host, port)
                self._queue.append(job)
                if len(self._queue) > self._idle and self._threads < self.size:
                    self._threads += 1
                    threading.Thread(target=self._work, name="akhbar-dns", daemon=True).start()
                else:
                    self._cv.notify()
            job.waiting += 1
        if not job.done.wait(max(0.0, timeout)):
            with self._cv:
                job.waiting -= 1
            raise ResolveTimeout(f"resolving {host} took longer than {max(0.0, timeout):.1f} s")
        if job.error is not None:
            raise job.error
        return list(job.result)

    def _work(self) -> None:
        while True:
            with self._cv:
                self._idle += 1
                until = time.monotonic() + self.linger
                while not self._queue:
                    left = until - time.monotonic()
                    if left <= 0:
                        self._idle -= 1
                        self._threads -= 1
                        return
                    self._cv.wait(left)
                self._idle -= 1
                job = self._queue.popleft()
                if job.waiting == 0:  # every caller gave up before it started: nobody wants it
                    del self._running[job.key]
                    continue
            try:
                job.result = list(job.resolver(job.host, job.port))
            except Exception as e:  # noqa: BLE001 - handed to the callers, who raise it
                job.error = e
            with self._cv:
                del self._running[job.key]
            job.done.set()


_LOOKUPS = LookupThreads()


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
                 connector: Connector | None = None, lookups: LookupThreads | None = None):
        self.allow_private = allow_private
        self.resolver = resolver or system_resolver
        self.connector = connector or system_connector
        self.lookups = lookups or _LOOKUPS

    def addresses(self, host: str, port: int, resolve_within: float | None = None) -> list[str]:
        """The checked addresses for ``host``; :class:`BlockedAddress` if any is not allowed.
        With ``resolve_within``, :class:`ResolveTimeout` if the name has not resolved by then."""
        literal = literal_ip(host)
        if literal is not None:
            addrs = [literal]
        else:
            name = host.lower().rstrip(".")
            if not self.allow_private and (name == "localhost" or name.endswith(".localhost")):
                raise BlockedAddress(f"{host} is a loopback name (use --allow-private-hosts for local sites)")
            if resolve_within is None:
                addrs = list(self.resolver(host, port))
            else:
                addrs = self.lookups.resolve(self.resolver, host, port, resolve_within)
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

    def connect(self, host: str, port: int, timeout, source_address=None, socket_options=None,
                resolve_within: float | None = None) -> socket.socket:
        """Connect to a checked address of ``host`` (the first that answers); the name must resolve
        within ``resolve_within`` seconds if given (:class:`ResolveTimeout`)."""
        last: OSError | None = None
        for addr in self.addresses(host, port, resolve_within):
            try:
                return self.connector((addr, port), timeout, source_address=source_address,
                                      socket_options=socket_options)
            except OSError as e:
                last = e
        raise last or OSError(f"cannot connect to {host}:{port}")
