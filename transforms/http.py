"""HTTP fetching: bounded, guarded, retried, and explicit about every failure.

One place decides whether a failure is transient (retried with backoff) or permanent (dead
letter now): :func:`classify_status` and the exception handling in :meth:`Fetcher.fetch`.
"""
from __future__ import annotations

import codecs
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import urllib3
import urllib3.connection

from akhbar.transforms.netguard import BlockedAddress, HostGuard

DEFAULT_USER_AGENT = "akhbar/0.1 (+https://github.com/akhbar-news/akhbar; Arabic news research crawler)"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("xml", "rss", "atom", "rdf", "text/plain", "text/html")


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

    def _semaphore(self, host: str, concurrency: int) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._sems:
                self._sems[host] = threading.BoundedSemaphore(max(1, concurrency))
            return self._sems[host]

    def hold_off(self, host: str, seconds: float) -> None:
        """No request to ``host`` starts in the next ``seconds``."""
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), self._clock() + seconds)

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


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            secs = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(secs, cap))


def _guarded_pool_classes(guard: HostGuard) -> dict:
    """urllib3 pool classes whose connections go through ``guard`` (resolve, check, connect)."""

    def new_conn(self):
        try:
            return guard.connect(self._dns_host, self.port, self.timeout, self.source_address, self.socket_options)
        except socket.gaierror as e:
            raise urllib3.exceptions.NameResolutionError(self.host, self, e) from e
        except TimeoutError as e:
            raise urllib3.exceptions.ConnectTimeoutError(self, f"connect to {self.host} timed out") from e
        except OSError as e:
            raise urllib3.exceptions.NewConnectionError(self, f"cannot connect: {e}") from e

    conn = type("GuardedHTTPConnection", (urllib3.connection.HTTPConnection,), {"_new_conn": new_conn})
    sconn = type("GuardedHTTPSConnection", (urllib3.connection.HTTPSConnection,), {"_new_conn": new_conn})
    return {
        "http": type("GuardedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": conn}),
        "https": type("GuardedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": sconn}),
    }


class Fetcher:
    """A reusable HTTP client (connection pooling); thread-safe. Every connection, redirects
    included, is opened through the :class:`HostGuard`."""

    def __init__(self, config: FetchConfig | None = None, guard: HostGuard | None = None,
                 sleep: Callable[[float], None] = time.sleep, limiter: HostLimiter | None = None):
        self.config = config or FetchConfig()
        self.guard = guard or HostGuard()
        self._sleep = sleep
        self.limiter = limiter or HostLimiter(sleep=sleep)
        self._pool = urllib3.PoolManager(
            num_pools=64,
            maxsize=8,
            retries=False,
            timeout=urllib3.Timeout(connect=self.config.connect_timeout, read=self.config.read_timeout),
        )
        self._pool.pool_classes_by_scheme = _guarded_pool_classes(self.guard)
        # urllib3 replaces (does not merge) pool headers when a request passes its own.
        self._headers = {
            "User-Agent": self.config.user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept-Language": "ar,en;q=0.5",
        }

    def fetch(self, url: str, *, accept: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
              headers: dict[str, str] | None = None, policy: HostPolicy | None = None) -> Response:
        """GET ``url``, retrying transient failures; raise :class:`FetchError` on failure.

        With ``If-None-Match``/``If-Modified-Since`` in ``headers`` a 304 is an answer (status
        304, empty body), not a failure. ``policy`` overrides the per-host politeness defaults.
        """
        policy = policy or HostPolicy(self.config.host_interval, self.config.host_concurrency)
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, accept, headers or {}, policy)
            except FetchError as e:
                if not e.transient or attempt >= self.config.retries:
                    raise
                if e.retry_after is None:
                    delay = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
                    self._sleep(delay * (0.5 + random.random()))  # exponential, with jitter
                # else: the server's Retry-After already holds off every request to the host
                attempt += 1

    def _fetch_once(self, url: str, accept: str, extra: dict[str, str], policy: HostPolicy) -> Response:
        seen = [url]
        current = url
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError("bad_url", f"not an http(s) URL: {current}")
            with self.limiter.slot(parts.netloc.lower(), policy):
                result = self._hop(url, current, accept, extra, tuple(seen[1:]))
            if isinstance(result, Response):
                return result
            if result in seen:
                raise FetchError("redirect_loop", f"redirect loop: {' -> '.join(seen + [result])}")
            if len(seen) > self.config.max_redirects:
                raise FetchError("too_many_redirects", f"more than {self.config.max_redirects} redirects from {url}")
            seen.append(result)
            current = result

    def _hop(self, url: str, current: str, accept: str, extra: dict[str, str],
             redirects: tuple[str, ...]) -> Response | str:
        """One request: the response, or the next URL of a redirect."""
        start = time.monotonic()
        host = urlsplit(current).hostname
        try:
            resp = self._pool.request(
                "GET", current, headers={**self._headers, "Accept": accept, **extra}, redirect=False,
                preload_content=False, decode_content=True,
            )
        except BlockedAddress as e:
            raise FetchError("blocked_address", str(e)) from e
        except urllib3.exceptions.NameResolutionError as e:
            raise FetchError("dns_error", f"cannot resolve {host}: {e}", transient=True) from e
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
                return urljoin(current, location)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status == 304 and ({"If-None-Match", "If-Modified-Since"} & set(extra)):
                return Response(url=url, final_url=current, status=304, headers=headers, body=b"",
                                elapsed=time.monotonic() - start, redirects=redirects)
            failure = classify_status(resp.status)
            if failure:
                reason, transient = failure
                retry_after = _retry_after(resp.headers.get("retry-after"), self.config.backoff_max)
                if retry_after:
                    self.limiter.hold_off(urlsplit(current).netloc.lower(), retry_after)
                raise FetchError(reason, f"HTTP {resp.status} for {current}", transient=transient,
                                 status=resp.status, retry_after=retry_after)
            body = self._read_bounded(resp, start)
            complete = True
            return Response(url=url, final_url=current, status=resp.status, headers=headers, body=body,
                            elapsed=time.monotonic() - start, redirects=redirects)
        finally:
            # A connection whose body was not read to the end cannot be reused: reading a
            # little of a small error body is cheaper than reconnecting; else close it.
            if not complete:
                try:
                    resp.read(64 * 1024, decode_content=False)
                    if not resp.isclosed() and resp.length_remaining not in (0, None):
                        resp.close()
                except Exception:  # noqa: BLE001 - the connection is discarded either way
                    resp.close()
            resp.release_conn()

    def _read_bounded(self, resp, start: float) -> bytes:
        cfg = self.config
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cfg.max_bytes and not resp.headers.get("content-encoding"):
            raise FetchError("too_large", f"Content-Length {declared} exceeds {cfg.max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.stream(64 * 1024):
                size += len(chunk)
                if size > cfg.max_bytes:  # counts decompressed bytes: stops gzip bombs too
                    raise FetchError("too_large", f"body exceeds {cfg.max_bytes} bytes")
                if time.monotonic() - start > cfg.total_timeout:
                    raise FetchError("timeout", f"total time over {cfg.total_timeout}s", transient=True)
                chunks.append(chunk)
        except urllib3.exceptions.TimeoutError as e:
            raise FetchError("timeout", f"read timed out: {e}", transient=True) from e
        except urllib3.exceptions.DecodeError as e:
            raise FetchError("bad_encoding", f"cannot decompress body: {e}") from e
        except urllib3.exceptions.HTTPError as e:
            raise FetchError("connection_error", f"{type(e).__name__}: {e}", transient=True) from e
        return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# Character encodings

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_\-.]+)["']""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Candidates for undeclared pages, in order of likelihood on Arabic sites.
ARABIC_CANDIDATES = ["utf_8", "cp1256", "iso8859_6", "cp720", "cp864"]


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


def decode_document(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode HTML/XML bytes: HTTP header → BOM → in-document declaration → detection.

    Returns ``(text, encoding)``. A declared encoding that fails to decode the bytes is not
    trusted; detection then picks among the Arabic code pages.
    """
    candidates: list[str] = []
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace"), name
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
        try:
            text = body.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if enc in _LATIN_SINGLE_BYTE and _looks_like_misdeclared_arabic(text):
            return body.decode("cp1256", errors="replace"), "cp1256"
        return text, enc
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(body, cp_isolation=ARABIC_CANDIDATES).best()
    enc = _codec(best.encoding) if best else None
    enc = enc or "cp1256"
    return body.decode(enc, errors="replace"), enc


def html_of(resp: Response) -> tuple[str, str]:
    """``(text, encoding)`` of an HTML page; :class:`FetchError` ``unsupported_content_type``
    for anything else (PDF, images, video)."""
    ctype = (resp.content_type or "").split(";")[0].strip().lower()
    if ctype and ctype not in HTML_TYPES:
        raise FetchError("unsupported_content_type", f"not an HTML page: {resp.content_type}")
    return decode_document(resp.body, resp.content_type)
