"""HTTP fetching: bounded, guarded, retried, and explicit about every failure.

One place decides whether a failure is transient (retried with backoff) or permanent (dead
letter now): :func:`classify_status` and the exception handling in :meth:`Fetcher.fetch`.
"""
from __future__ import annotations

import codecs
import heapq
import http.client
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import charset_normalizer
import urllib3
import urllib3.connection
import urllib3.response

from akhbar.transforms.netguard import BlockedAddress, HostGuard, ResolveTimeout
from akhbar.transforms.urls import BadURL, split_http_url

DEFAULT_USER_AGENT = "akhbar/0.1 (+https://github.com/akhbar-news/akhbar; Arabic news research crawler)"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("xml", "rss", "atom", "rdf", "text/plain", "text/html")
MAX_REFUSAL = 86400.0  # the longest a Retry-After keeps a host's requests refused


@dataclass(frozen=True)
class FetchConfig:
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 8 * 1024 * 1024
    max_redirects: int = 5
    retries: int = 2  # extra attempts after the first, for transient failures
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    host_interval: float = 1.0  # seconds between request starts to one host (per worker)
    host_concurrency: int = 2  # requests in flight to one host (per worker)


@dataclass(frozen=True)
class HostPolicy:
    """Politeness towards one host: a per-source override of the FetchConfig defaults."""

    interval: float
    concurrency: int


class HostLimiter:
    """Per-host politeness inside one worker: at most ``concurrency`` requests in flight and
    request starts at least ``interval`` apart. A ``Retry-After`` or a robots.txt crawl-delay
    pushes the host's next slot later for every thread."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._next: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._refused: dict[str, tuple[float, int]] = {}  # host -> (until, status)

    def _semaphore(self, host: str, concurrency: int) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._sems:
                self._sems[host] = threading.BoundedSemaphore(max(1, concurrency))
            return self._sems[host]

    def hold_off(self, host: str, seconds: float) -> None:
        """No request to ``host`` starts in the next ``seconds``."""
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), self._clock() + seconds)

    def refuse(self, host: str, seconds: float, status: int) -> None:
        """The host asked for a pause longer than we ever wait (``Retry-After`` over the backoff
        cap): its requests fail at once, with that status, for the next ``seconds`` (at most a
        day), instead of each page sleeping through the cap again and again."""
        with self._lock:
            until = self._clock() + min(seconds, MAX_REFUSAL)
            if until > self._refused.get(host, (0.0, 0))[0]:
                self._refused[host] = (until, status)

    def check_refused(self, host: str) -> None:
        """:class:`FetchError` with the status the host answered if it is refusing requests now."""
        with self._lock:
            until, status = self._refused.get(host, (0.0, 0))
            left = until - self._clock()
        if left > 0:
            raise FetchError(f"http_{status}", f"{host} asked not to be requested for another {left:.0f} s "
                             f"(HTTP {status} with Retry-After)", transient=True, status=status, retry_after=left)

    def slow_down(self, host: str, interval: float) -> None:
        """Raise the host's minimum interval (never lowers it), e.g. to a robots crawl-delay."""
        with self._lock:
            self._interval[host] = max(self._interval.get(host, 0.0), interval)

    @contextmanager
    def slot(self, host: str, policy: HostPolicy):
        sem = self._semaphore(host, policy.concurrency)
        with sem:
            with self._lock:
                now = self._clock()
                start = max(now, self._next.get(host, 0.0))
                self._next[host] = start + max(policy.interval, self._interval.get(host, 0.0))
            if start > now:
                self._sleep(start - now)
            yield


@dataclass(frozen=True)
class Response:
    url: str  # the URL requested
    final_url: str  # after redirects
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    redirects: tuple[str, ...] = field(default=())
    truncated: bool = False  # only with ``keep_prefix``: the body is the first ``max_bytes`` of a longer one

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


class FetchError(Exception):
    """A fetch that failed; ``reason`` is the stable code written to dead letters."""

    def __init__(self, reason: str, message: str, *, transient: bool = False, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.reason = reason
        self.transient = transient
        self.status = status
        self.retry_after = retry_after


def classify_status(status: int) -> tuple[str, bool] | None:
    """``(reason, transient)`` for an HTTP status that is a failure, ``None`` for success."""
    if 200 <= status < 300:
        return None
    return f"http_{status}", status in TRANSIENT_STATUSES


def _retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for, uncapped; ``None`` when it asks for no wait
    at all (0, negative, a date in the past) or cannot be read: the normal backoff applies
    then, so a server that says "now" is not hammered without a pause."""
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            secs = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, OverflowError):
            return None
    return secs if secs > 0 and secs == secs else None  # NaN is not a wait either


class _Budget:
    """What is left of ``--total-timeout`` for one URL: every hop, every retry and every backoff
    pause is charged to it, and so is the robots.txt check before each hop (fetching the site's
    robots.txt, or waiting while another thread does). Waiting for a politeness slot is not (a
    host with many pages queued would otherwise time its own pages out)."""

    def __init__(self, total: float):
        self.total = total
        self.spent = 0.0

    def left(self) -> float:
        return self.total - self.spent

    @contextmanager
    def charged(self):
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent += time.monotonic() - started


class _Deadlines:
    """One thread that fires every hop's watchdog at its deadline.

    A ``threading.Timer`` per hop costs a thread start (about 0.25 ms of CPU here, more than a
    page's fetch otherwise costs); this keeps the deadlines of all hops in a heap and sleeps until
    the nearest. Cancelled watchdogs stay in the heap until their time comes and are skipped.
    """

    def __init__(self):
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._count = 0
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, watchdog: _Watchdog) -> None:
        with self._cv:
            self._count += 1
            heapq.heappush(self._heap, (deadline, self._count, watchdog))
            if self._thread is None or not self._thread.is_alive():  # also after a fork
                self._thread = threading.Thread(target=self._run, name="akhbar-fetch-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watchdog:
                self._cv.notify()  # a nearer deadline than the one being waited for

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                deadline, _, watchdog = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0 and not watchdog.cancelled:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if not watchdog.cancelled:
                watchdog.fire()


_DEADLINES = _Deadlines()


class _Watchdog:
    """Cuts one hop off when its share of the total time is used up.

    Socket timeouts bound each ``recv`` separately, so a server sending one header line or one
    body byte a second never trips them. Shutting the hop's socket down at the deadline does,
    wherever the read is blocked (status line, headers, body); the hop then fails as ``timeout``.
    """

    def __init__(self, seconds: float):
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.fired = False
        self.cancelled = False
        self.deadline = time.monotonic() + max(0.0, seconds)
        _DEADLINES.add(self.deadline, self)

    def left(self) -> float:
        """Seconds until the hop's deadline (0 once it has passed)."""
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if self.fired:
                _shut(sock)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            self._socks.clear()

    def fire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.fired = True
            for sock in self._socks:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown also for a TLS socket: it acts on the descriptor and leaves
    # the TLS object (in use by the reading thread) alone; the blocked read then ends at once
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _SkipInterim(http.client.HTTPResponse):
    """http.client skips only ``100 Continue``; any other interim 1xx (``103 Early Hints``) would
    be taken as the answer. Reported as 100 here, the interim response is skipped the same way
    and the final one read. 101 (a protocol switch) stays what it is."""

    def _read_status(self):
        version, status, reason = super()._read_status()
        if 100 < status < 200 and status != 101:
            return version, http.client.CONTINUE, reason
        return version, status, reason


def _guarded_pool_classes(guard: HostGuard, hops: threading.local) -> dict:
    """urllib3 pool classes whose connections go through ``guard`` (resolve, check, connect) and
    whose sockets are handed to the current hop's :class:`_Watchdog` (``hops.watchdog``)."""

    class Guarded:
        response_class = _SkipInterim

        def _new_conn(self):
            # A socket can be shut down at the deadline; a name lookup cannot: it gets the hop's
            # time left and is given up (ResolveTimeout, passed on as it is) when that runs out.
            watchdog = getattr(hops, "watchdog", None)
            try:
                sock = guard.connect(self._dns_host, self.port, self.timeout, self.source_address,
                                     self.socket_options,
                                     resolve_within=watchdog.left() if watchdog is not None else None)
            except socket.gaierror as e:
                raise urllib3.exceptions.NameResolutionError(self.host, self, e) from e
            except TimeoutError as e:
                raise urllib3.exceptions.ConnectTimeoutError(self, f"connect to {self.host} timed out") from e
            except OSError as e:
                raise urllib3.exceptions.NewConnectionError(self, f"cannot connect: {e}") from e
            _watch(hops, sock)  # from here on: a TLS handshake can be dripped too
            return sock

        def getresponse(self, *args, **kwargs):
            _watch(hops, self.sock)  # a reused connection was not opened in this hop
            return super().getresponse(*args, **kwargs)

    conn = type("GuardedHTTPConnection", (Guarded, urllib3.connection.HTTPConnection), {})
    sconn = type("GuardedHTTPSConnection", (Guarded, urllib3.connection.HTTPSConnection), {})
    return {
        "http": type("GuardedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": conn}),
        "https": type("GuardedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": sconn}),
    }


def _watch(hops: threading.local, sock) -> None:
    watchdog = getattr(hops, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(sock)


_NOT_URL_SAFE = re.compile(r"[^\x21-\x7e]+")


def redirect_target(current: str, location: str) -> str:
    """The absolute URL a ``Location`` header points to, ASCII only.

    http.client decodes header bytes as Latin-1, so a raw UTF-8 Arabic slug
    (``/مقال``, common on Arabic WordPress sites) arrives as Latin-1 mojibake. Where the
    round trip Latin-1 → bytes → UTF-8 is valid, those were the bytes meant; anything not
    printable ASCII is then percent-encoded as UTF-8 (the host as IDNA). :class:`FetchError`
    ``bad_url`` for a target that cannot be an http(s) URL.
    """
    try:
        location = location.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass  # not UTF-8 bytes read as Latin-1: keep what the header said
    try:
        parts = split_http_url(urljoin(current, location.strip()))
    except (BadURL, ValueError) as e:
        raise FetchError("bad_url", f"redirect from {current} to a bad URL: {e}") from e
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise FetchError("bad_url", f"redirect to a host that is not a valid name: {parts.hostname!r}") from e
        netloc = host + (f":{parts.port}" if parts.port is not None else "")
    encode = lambda s: _NOT_URL_SAFE.sub(lambda m: quote(m.group(0), safe=""), s)  # noqa: E731
    return urlunsplit((parts.scheme.lower(), netloc, encode(parts.path), encode(parts.query), encode(parts.fragment)))


def _decodable(content_encoding: str | None) -> bool:
    """Whether urllib3 can undo every coding listed (it passes unknown ones, e.g. ``br``
    without the brotli package, through unchanged: compressed bytes posing as a page)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    known = set(urllib3.response.HTTPResponse.CONTENT_DECODERS) | {"identity"}
    return all(c in known for c in codings)


_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip_bounded(body: bytes, limit: int) -> bytes:
    """A gzip body sent without ``Content-Encoding`` (the server compressed it twice or forgot
    the header), decompressed under the same size limit as any body. ``bad_encoding`` if it is
    not gzip after all."""
    out = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = out.decompress(body, limit + 1)
    except zlib.error as e:
        raise FetchError("bad_encoding", f"gzip body without Content-Encoding cannot be decompressed: {e}") from e
    if len(text) > limit:
        raise FetchError("too_large", f"body exceeds {limit} bytes (gzip without Content-Encoding)")
    return text


class _Refused(Exception):
    """``allow`` refused a URL: passed through :meth:`Fetcher.fetch` without retries."""

    def __init__(self, error: FetchError):
        super().__init__(str(error))
        self.error = error


class Fetcher:
    """A reusable HTTP client (connection pooling); thread-safe. Every connection, redirects
    included, is opened through the :class:`HostGuard`."""

    def __init__(self, config: FetchConfig | None = None, guard: HostGuard | None = None,
                 sleep: Callable[[float], None] = time.sleep, limiter: HostLimiter | None = None):
        self.config = config or FetchConfig()
        self.guard = guard or HostGuard()
        self._sleep = sleep
        self.limiter = limiter or HostLimiter(sleep=sleep)
        self._hops = threading.local()  # the watchdog of the hop this thread is fetching
        self._pool = urllib3.PoolManager(
            num_pools=64,
            maxsize=8,
            retries=False,
            timeout=urllib3.Timeout(connect=self.config.connect_timeout, read=self.config.read_timeout),
        )
        self._pool.pool_classes_by_scheme = _guarded_pool_classes(self.guard, self._hops)
        # urllib3 replaces (does not merge) pool headers when a request passes its own.
        self._headers = {
            "User-Agent": self.config.user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept-Language": "ar,en;q=0.5",
        }

    def fetch(self, url: str, *, accept: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
              headers: dict[str, str] | None = None, policy: HostPolicy | None = None,
              allow: Callable[[str], None] | None = None, max_bytes: int | None = None,
              keep_prefix: bool = False) -> Response:
        """GET ``url``, retrying transient failures; raise :class:`FetchError` on failure.

        With ``If-None-Match``/``If-Modified-Since`` in ``headers`` a 304 is an answer (status
        304, empty body), not a failure. ``policy`` overrides the per-host politeness defaults.
        ``allow(url)`` is called before every hop, redirects included, and raises
        :class:`FetchError` to refuse one (robots.txt). ``max_bytes`` overrides the size limit;
        with ``keep_prefix`` a longer body is cut there instead of failing (``truncated``).
        ``--total-timeout`` bounds the whole call: all hops, retries and backoff pauses.
        """
        policy = policy or HostPolicy(self.config.host_interval, self.config.host_concurrency)
        budget = _Budget(self.config.total_timeout)
        limit = (max_bytes or self.config.max_bytes, keep_prefix)
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, accept, headers or {}, policy, budget, allow, limit)
            except _Refused as refused:
                raise refused.error from None  # robots.txt said no: asking again will not change that
            except FetchError as e:
                if not e.transient or attempt >= self.config.retries:
                    raise
                if e.retry_after is not None:
                    if e.retry_after > min(self.config.backoff_max, budget.left()):
                        raise  # waiting that long would outlast the fetch; the host is held off
                    # else: the server's Retry-After already holds off every request to the host
                else:
                    delay = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
                    delay *= 0.5 + random.random()  # exponential, with jitter
                    if delay >= budget.left():
                        raise
                    with budget.charged():
                        self._sleep(delay)
                attempt += 1

    def _fetch_once(self, url: str, accept: str, extra: dict[str, str], policy: HostPolicy,
                    budget: _Budget, allow: Callable[[str], None] | None, limit: tuple[int, bool]) -> Response:
        seen = [url]
        current = url
        while True:
            try:
                parts = split_http_url(current)
            except BadURL as e:
                raise FetchError("bad_url", str(e)) from e
            if allow is not None:
                try:
                    with budget.charged():  # robots.txt: its fetch, or the wait for another thread's
                        allow(current)
                except FetchError as e:
                    raise _Refused(e) from e
            host = parts.netloc.lower()
            self.limiter.check_refused(host)
            with self.limiter.slot(host, policy):
                with budget.charged():
                    result = self._hop(url, current, accept, extra, tuple(seen[1:]), budget.left(), limit)
            if isinstance(result, Response):
                return result
            if result in seen:
                raise FetchError("redirect_loop", f"redirect loop: {' -> '.join(seen + [result])}")
            if len(seen) > self.config.max_redirects:
                raise FetchError("too_many_redirects", f"more than {self.config.max_redirects} redirects from {url}")
            seen.append(result)
            current = result

    def _hop(self, url: str, current: str, accept: str, extra: dict[str, str],
             redirects: tuple[str, ...], time_left: float, limit: tuple[int, bool]) -> Response | str:
        """One request within ``time_left`` seconds: the response, or the next URL of a redirect."""
        cfg = self.config
        if time_left <= 0:
            raise FetchError("timeout", f"total time over {cfg.total_timeout}s", transient=True)
        start = time.monotonic()
        host = urlsplit(current).hostname
        watchdog = _Watchdog(time_left)
        self._hops.watchdog = watchdog
        try:
            return self._request(url, current, accept, extra, redirects, start, host, watchdog, limit, time_left)
        except FetchError as e:
            if watchdog.fired and e.reason in ("timeout", "connection_error") and \
                    not isinstance(e.__cause__, ResolveTimeout):  # that one says what took the time
                raise FetchError("timeout", f"total time over {cfg.total_timeout}s for {url}", transient=True) from e
            raise
        finally:
            watchdog.cancel()
            self._hops.watchdog = None

    def _request(self, url: str, current: str, accept: str, extra: dict[str, str], redirects: tuple[str, ...],
                 start: float, host: str | None, watchdog: _Watchdog, limit: tuple[int, bool],
                 time_left: float) -> Response | str:
        cfg = self.config
        try:
            resp = self._pool.request(
                "GET", current, headers={**self._headers, "Accept": accept, **extra}, redirect=False,
                preload_content=False, decode_content=True,
                timeout=urllib3.Timeout(connect=min(cfg.connect_timeout, time_left),
                                        read=min(cfg.read_timeout, time_left)),
            )
        except BlockedAddress as e:
            raise FetchError("blocked_address", str(e)) from e
        except ResolveTimeout as e:
            raise FetchError("timeout", f"{e}, all the time left of --total-timeout ({cfg.total_timeout}s) "
                             f"for {url}", transient=True) from e
        except urllib3.exceptions.NameResolutionError as e:
            raise FetchError("dns_error", f"cannot resolve {host}: {e}", transient=True) from e
        except urllib3.exceptions.NewConnectionError as e:  # a subclass of ConnectTimeoutError in urllib3 2
            raise FetchError("connection_error", f"cannot connect: {e}", transient=True) from e
        except urllib3.exceptions.TimeoutError as e:
            raise FetchError("timeout", f"timed out: {e}", transient=True) from e
        except urllib3.exceptions.HTTPError as e:
            raise FetchError("connection_error", f"{type(e).__name__}: {e}", transient=True) from e
        complete = False
        try:
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("location")
                if not location:
                    raise FetchError("bad_redirect", f"HTTP {resp.status} without Location", status=resp.status)
                return redirect_target(current, location)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status == 304 and ({"If-None-Match", "If-Modified-Since"} & set(extra)):
                return Response(url=url, final_url=current, status=304, headers=headers, body=b"",
                                elapsed=time.monotonic() - start, redirects=redirects)
            failure = classify_status(resp.status)
            if failure:
                reason, transient = failure
                retry_after = _retry_after(resp.headers.get("retry-after"))
                if retry_after is not None:
                    netloc = urlsplit(current).netloc.lower()
                    if retry_after <= cfg.backoff_max:
                        self.limiter.hold_off(netloc, retry_after)
                    else:  # longer than any pause we make: the host's pages fail at once until then
                        self.limiter.refuse(netloc, retry_after, resp.status)
                raise FetchError(reason, f"HTTP {resp.status} for {current}", transient=transient,
                                 status=resp.status, retry_after=retry_after)
            if not _decodable(resp.headers.get("content-encoding")):
                raise FetchError("bad_encoding", f"Content-Encoding {resp.headers.get('content-encoding')!r} "
                                 "cannot be decoded")
            body, truncated = self._read_bounded(resp, start + time_left, limit)
            if watchdog.fired:  # the cut-off socket may look like a body that simply ended
                raise FetchError("timeout", f"total time over {cfg.total_timeout}s", transient=True)
            complete = not truncated
            if body.startswith(_GZIP_MAGIC) and "gzip" not in (headers.get("content-type") or ""):
                body = _gunzip_bounded(body, limit[0])
            return Response(url=url, final_url=current, status=resp.status, headers=headers, body=body,
                            elapsed=time.monotonic() - start, redirects=redirects, truncated=truncated)
        finally:
            # A connection whose body was not read to the end cannot be reused: reading a
            # little of a small error body is cheaper than reconnecting; else close it.
            if not complete:
                try:
                    if watchdog.fired:
                        resp.close()
                    else:
                        resp.read(64 * 1024, decode_content=False)
                        if not resp.isclosed() and resp.length_remaining not in (0, None):
                            resp.close()
                except Exception:  # noqa: BLE001 - the connection is discarded either way
                    resp.close()
            resp.release_conn()

    def _read_bounded(self, resp, deadline: float, limit: tuple[int, bool]) -> tuple[bytes, bool]:
        """The body, stopped at ``max_bytes`` (``too_large``, or cut there with ``keep_prefix``)
        and at the deadline (the watchdog interrupts a read that blocks past it)."""
        cfg = self.config
        max_bytes, keep_prefix = limit
        declared = resp.headers.get("content-length")
        if (declared and declared.isdigit() and int(declared) > max_bytes and not keep_prefix
                and not resp.headers.get("content-encoding")):
            raise FetchError("too_large", f"Content-Length {declared} exceeds {max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.stream(64 * 1024):
                if time.monotonic() > deadline:
                    raise FetchError("timeout", f"total time over {cfg.total_timeout}s", transient=True)
                if size + len(chunk) > max_bytes:  # counts decompressed bytes: stops gzip bombs too
                    if keep_prefix:
                        chunks.append(chunk[:max_bytes - size])
                        return b"".join(chunks), True
                    raise FetchError("too_large", f"body exceeds {max_bytes} bytes")
                size += len(chunk)
                chunks.append(chunk)
        except urllib3.exceptions.TimeoutError as e:
            raise FetchError("timeout", f"read timed out: {e}", transient=True) from e
        except urllib3.exceptions.DecodeError as e:
            raise FetchError("bad_encoding", f"cannot decompress body: {e}") from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise FetchError("connection_error", f"{type(e).__name__}: {e}", transient=True) from e
        return b"".join(chunks), False


# ---------------------------------------------------------------------------------------------
# Character encodings

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_\-.]+)["']""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Candidates for pages that are not UTF-8, in order of likelihood on Arabic sites.
ARABIC_CODE_PAGES = ["cp1256", "iso8859_6", "cp720", "cp864"]


# Servers often declare a Western code page by default (Apache's ISO-8859-1) for pages that are
# really windows-1256: those decode without error into Latin mojibake.
_LATIN_SINGLE_BYTE = frozenset({"latin-1", "iso8859-1", "cp1252", "iso8859-15", "iso8859-9", "cp1250"})
_ARABIC_LETTER = re.compile(r"[\u0621-\u064a]")


_TAG = re.compile(r"<[^>]*>")
_ACCENTED_WORD = re.compile(r"[A-Za-z\u00c0-\u00ff]*[\u00c0-\u00ff][A-Za-z\u00c0-\u00ff]*")


def _looks_like_misdeclared_arabic(text: str) -> bool:
    """Windows-1256 read as a Western code page: Arabic letters become words made only of
    accented Latin letters ("ÇáäÇÊæ"). French or German words mix a few accents into plain
    letters, so they do not count."""
    sample = _TAG.sub(" ", text[:50000])
    if _ARABIC_LETTER.search(sample):
        return False
    words = _ACCENTED_WORD.findall(sample)
    garbled = [w for w in words if len(w) >= 3 and not re.search(r"[A-Za-z]", w)]
    return len(garbled) >= 3 and len(garbled) * 2 >= len(words)


# windows-1256 and ISO-8859-6 put the Arabic letters at different byte values, and both decode
# almost any Arabic page without an error: either read as the other gives Arabic-looking text
# with the wrong letters. Real Arabic is told by its words: many start with the article ال (also
# after و ف ب ك, or as لل), and none mix in Latin letters (ISO-8859-6 read as windows-1256 turns
# و ي ه ى ق into è ê ç é â), C1 controls or undecodable bytes (windows-1256 read as ISO-8859-6),
# or carry a vowel mark with no letter before it or a tanween inside the word.
_ARABIC_TWIN = {"cp1256": "iso8859-6", "iso8859-6": "cp1256"}
_AR_LETTERS = "\u0621-\u064a\u0671-\u06d3"
_AR_WORD = re.compile(f"[{_AR_LETTERS}\u064b-\u0652\u00c0-\u00ff\u0080-\u009f\ufffd]+")
_AR_LETTER = re.compile(f"[{_AR_LETTERS}]")
_AR_ARTICLE = re.compile("(?:[\u0648\u0641\u0628\u0643]?\u0627\u0644|\u0644\u0644)")  # ال وال فال بال كال لل
_AR_GARBLED = re.compile(f"[\u00c0-\u00ff\u0080-\u009f\ufffd]|^[\u064b-\u0652]"
                         f"|[\u064b-\u064d](?![\u0627\u0649])(?=[{_AR_LETTERS}])")
_TWIN_MIN_WORDS = 5  # Arabic words the other code page must give before it can win
_TWIN_MARGIN = 0.2  # by how much its score must be higher
_SCORE_WORDS = 300  # words looked at (70 already tell the two apart; a page has thousands)
_SCORE_CHARS = 50000


def _arabic_score(text: str) -> tuple[int, float, int]:
    """``(words, score, offset)`` of the first Arabic words of ``text``: the share that start
    with the article less twice the share that are garbled (see above), and where the last word
    looked at ends. Real Arabic scores about 0.3 to 0.5, the other code page's reading of it
    below 0. Markup needs no stripping: it is ASCII, which no Arabic word contains."""
    words = article = garbled = offset = 0
    for m in _AR_WORD.finditer(text, 0, _SCORE_CHARS):
        word = m.group()
        if len(word) < 2 or not _AR_LETTER.search(word):
            continue
        words += 1
        article += bool(_AR_ARTICLE.match(word))
        garbled += bool(_AR_GARBLED.search(word))
        offset = m.end()
        if words == _SCORE_WORDS:
            break
    return words, (article - 2 * garbled) / words if words else 0.0, offset


def _likelier_twin(body: bytes, text: str, enc: str) -> tuple[str, str]:
    """``(text, enc)``, or the other of windows-1256 / ISO-8859-6 when ``enc`` is one of them and
    the other reads as Arabic far better (a page declared, or detected, as the wrong one). Both
    are single-byte code pages, so character offsets are byte offsets: the other reading is made
    of the bytes the first one looked at, not of the whole page."""
    twin = _ARABIC_TWIN.get(enc)
    if twin is None:
        return text, enc
    _, own, offset = _arabic_score(text)
    words, score, _ = _arabic_score(body[:offset].decode(twin, errors="replace"))
    if words >= _TWIN_MIN_WORDS and score > own + _TWIN_MARGIN:
        return body.decode(twin, errors="replace"), twin
    return text, enc


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = re.search(r"charset\s*=\s*[\"']?([^;\"'\s]+)", content_type, re.I)
    return _codec(m.group(1)) if m else None


# Evidence needed to believe UTF-8: a bad byte is forgiven per 20 valid multi-byte characters (a
# truncated last character, one stray byte); overruling a single-byte declaration also takes at
# least 10 of them. Windows-1256 Arabic read as UTF-8 is nearly all bad bytes (its letters are
# lead bytes followed by lead bytes), so a real code-page page never passes.
_BAD_BYTES_PER_CHAR = 20
_OVERRULE_MULTIBYTE = 10
_NUL_SHARE = 0.2  # of the bytes at every other position, for UTF-16 without a BOM


def _utf8_text(body: bytes, min_multibyte: int) -> str | None:
    """The body decoded as UTF-8 (bad bytes as U+FFFD) if it is UTF-8 text: at least
    ``min_multibyte`` valid multi-byte characters and few bad bytes among them; else ``None``.

    A strict decode fails at a single bad byte, and detection among single-byte code pages then
    accepts anything, turning a whole Arabic page into mojibake for one byte."""
    try:
        text, bad = body.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
    multibyte = len(text) - len(text.encode("ascii", "ignore")) - bad
    if multibyte >= min_multibyte and bad * _BAD_BYTES_PER_CHAR <= multibyte:
        return text
    return None


def _utf16_by_nuls(body: bytes) -> str | None:
    """UTF-16 without a BOM, told by its NUL bytes: markup and spaces are ASCII, so every other
    byte is 0 (the high byte of LE, the low byte of BE). No 8-bit page has that pattern, while
    UTF-16 also decodes "validly" as UTF-8 into text full of NULs."""
    sample = body[:4096]
    if len(sample) < 16:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul >= _NUL_SHARE and even_nul < odd_nul / 10:
        return "utf-16-le"
    if even_nul >= _NUL_SHARE and odd_nul < even_nul / 10:
        return "utf-16-be"
    return None


def _arabic_code_page(body: bytes) -> tuple[str, str]:
    """``(text, enc)`` in the likeliest single-byte Arabic code page of ``body`` (windows-1256
    when undecided), checked against its twin (:func:`_likelier_twin`)."""
    best = charset_normalizer.from_bytes(body, cp_isolation=ARABIC_CODE_PAGES).best()
    enc = _codec(best.encoding) if best and _codec(best.encoding) else "cp1256"
    return _likelier_twin(body, body.decode(enc, errors="replace"), enc)


def decode_document(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode HTML/XML bytes: BOM → UTF-16 pattern → HTTP header → in-document declaration → detection.

    Returns ``(text, encoding)``. A declaration that cannot be right is not trusted: UTF-8 that
    does not decode (mostly), a single-byte code page over text that is plainly UTF-8 (a code
    page decodes any bytes, into mojibake), UTF-16 without its NUL bytes, windows-1256 declared
    as a Western code page, ISO-8859-6 declared as windows-1256 or the reverse. Text that is
    UTF-8 but for a few bad bytes stays UTF-8 (U+FFFD for those); detection otherwise picks
    among the Arabic code pages.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace"), name
    utf16 = _utf16_by_nuls(body)
    if utf16:
        return body.decode(utf16, errors="replace"), utf16
    candidates: list[str] = []
    declared = header_charset(content_type)
    if declared:
        candidates.append(declared)
    head = body[:4096]
    m = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    if m:
        doc = _codec(m.group(1).decode("ascii", "ignore"))
        if doc:
            candidates.append(doc)
    for enc in candidates:
        if enc.startswith(("utf-16", "utf-32")):
            continue  # neither a BOM nor the NUL pattern: it is not UTF-16
        if enc in ("utf-8", "utf-8-sig"):
            text = _utf8_text(body, 0)
            if text is not None:
                return text, "utf-8"
            continue
        text = _utf8_text(body, _OVERRULE_MULTIBYTE)
        if text is not None:
            return text, "utf-8"
        try:
            text = body.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if enc in _LATIN_SINGLE_BYTE and _looks_like_misdeclared_arabic(text):
            return _arabic_code_page(body)
        return _likelier_twin(body, text, enc)
    text = _utf8_text(body, 0)
    if text is not None:
        return text, "utf-8"
    return _arabic_code_page(body)


def html_of(resp: Response) -> tuple[str, str]:
    """``(text, encoding)`` of an HTML page; :class:`FetchError` ``unsupported_content_type``
    for anything else (PDF, images, video)."""
    ctype = (resp.content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in HTML_TYPES:
        raise FetchError("unsupported_content_type", f"not an HTML page: {resp.content_type}")
    return decode_document(resp.body, resp.content_type)
