"""HTTP fetching: bounded, guarded, retried, and explicit about every failure.

One place decides whether a failure is transient (retried with backoff) or permanent (dead
letter now): :func:`classify_status` and the exception handling in :meth:`Fetcher.fetch`.
"""
from __future__ import annotations

import codecs
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import urllib3

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


class Fetcher:
    """A reusable HTTP client (connection pooling); thread-safe."""

    def __init__(self, config: FetchConfig | None = None, guard: HostGuard | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config or FetchConfig()
        self.guard = guard or HostGuard()
        self._sleep = sleep
        self._pool = urllib3.PoolManager(
            num_pools=64,
            maxsize=8,
            retries=False,
            timeout=urllib3.Timeout(connect=self.config.connect_timeout, read=self.config.read_timeout),
        )
        # urllib3 replaces (does not merge) pool headers when a request passes its own.
        self._headers = {
            "User-Agent": self.config.user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept-Language": "ar,en;q=0.5",
        }

    def fetch(self, url: str, *, accept: str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
              headers: dict[str, str] | None = None) -> Response:
        """GET ``url``, retrying transient failures; raise :class:`FetchError` on failure."""
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, accept, headers or {})
            except FetchError as e:
                if not e.transient or attempt >= self.config.retries:
                    raise
                delay = e.retry_after
                if delay is None:
                    delay = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
                    delay *= 0.5 + random.random()  # jitter
                self._sleep(delay)
                attempt += 1

    def _fetch_once(self, url: str, accept: str, extra: dict[str, str]) -> Response:
        cfg = self.config
        start = time.monotonic()
        seen = [url]
        current = url
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError("bad_url", f"not an http(s) URL: {current}")
            try:
                self.guard.check(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
            except BlockedAddress as e:
                raise FetchError("blocked_address", str(e)) from e
            except OSError as e:
                raise FetchError("dns_error", str(e), transient=True) from e
            try:
                resp = self._pool.request(
                    "GET", current, headers={**self._headers, "Accept": accept, **extra}, redirect=False,
                    preload_content=False, decode_content=True,
                )
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
                    nxt = urljoin(current, location)
                    if nxt in seen:
                        raise FetchError("redirect_loop", f"redirect loop: {' -> '.join(seen + [nxt])}")
                    if len(seen) > cfg.max_redirects:
                        raise FetchError("too_many_redirects", f"more than {cfg.max_redirects} redirects from {url}")
                    seen.append(nxt)
                    current = nxt
                    continue
                failure = classify_status(resp.status)
                if failure:
                    reason, transient = failure
                    raise FetchError(reason, f"HTTP {resp.status} for {current}", transient=transient,
                                     status=resp.status,
                                     retry_after=_retry_after(resp.headers.get("retry-after"), cfg.backoff_max))
                body = self._read_bounded(resp, start)
                complete = True
                return Response(url=url, final_url=current, status=resp.status,
                                headers={k.lower(): v for k, v in resp.headers.items()}, body=body,
                                elapsed=time.monotonic() - start, redirects=tuple(seen[1:]))
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
            return body.decode(enc), enc
        except (UnicodeDecodeError, LookupError):
            continue
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
