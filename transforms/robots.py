"""robots.txt for article pages: fetched once per site and worker, cached, obeyed.

Following RFC 9309: a robots.txt that does not exist (any 4xx) allows everything; one that cannot
be fetched (5xx, timeout, connection failure) is treated as disallowing everything for now, so
the page becomes a transient ``robots_unavailable`` dead letter (``akhbar replay`` retries it).
Only the first 512 KiB of a robots.txt are read and parsed (RFC 9309 asks for at least 500 KiB).
Every hop of a page's fetch is checked (:meth:`RobotsCache.check` as the fetch's ``allow``), so a
redirect cannot lead into a disallowed path or to another site's disallowed page.
A ``Crawl-delay`` for our agent slows requests to that host down to it (capped).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from akhbar.transforms.http import FetchError, Fetcher

AGENT_TOKEN = "akhbar"
MAX_CRAWL_DELAY = 30.0
# RFC 9309 2.5: crawlers must parse at least the first 500 KiB. A longer file is read that far
# and parsed, rather than failing as too_large and refusing the whole site.
MAX_ROBOTS_BYTES = 512 * 1024


def robots_lines(body: bytes, truncated: bool) -> list[str]:
    """The lines of a robots.txt; of a cut-off one, without the last line (it may be half a rule)."""
    lines = body.decode("utf-8", errors="replace").splitlines()
    return lines[:-1] if truncated and lines else lines


@dataclass
class _Entry:
    parser: RobotFileParser | None  # None: allow everything
    unavailable: str | None  # why robots.txt could not be read (then everything is refused)
    expires: float


class RobotsCache:
    def __init__(self, fetcher: Fetcher, *, agent: str = AGENT_TOKEN, ttl: float = 86400.0,
                 retry_unavailable_after: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.fetcher = fetcher
        self.agent = agent
        self.ttl = ttl
        self.retry_unavailable_after = retry_unavailable_after
        self._clock = clock
        self._lock = threading.Lock()
        self._site_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, _Entry] = {}

    def check(self, url: str) -> None:
        """Return if ``url`` may be fetched; raise :class:`FetchError` ``robots_disallowed``
        (permanent) or ``robots_unavailable`` (transient) otherwise."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        entry = self._entry(origin)
        if entry.unavailable:
            raise FetchError("robots_unavailable", f"{origin}/robots.txt unavailable ({entry.unavailable}); "
                             "not fetching the site's pages for now", transient=True)
        if entry.parser is not None and not entry.parser.can_fetch(self.agent, url):
            raise FetchError("robots_disallowed", f"robots.txt of {origin} disallows {url}")

    def _entry(self, origin: str) -> _Entry:
        with self._lock:
            site_lock = self._site_locks.setdefault(origin, threading.Lock())
        with site_lock:  # one fetch per site, other threads wait for it
            entry = self._cache.get(origin)
            if entry is None or entry.expires <= self._clock():
                entry = self._load(origin)
                self._cache[origin] = entry
            return entry

    def _load(self, origin: str) -> _Entry:
        now = self._clock()
        try:
            resp = self.fetcher.fetch(f"{origin}/robots.txt", accept="text/plain, */*;q=0.1",
                                      max_bytes=MAX_ROBOTS_BYTES, keep_prefix=True)
        except FetchError as e:
            if e.status is not None and 400 <= e.status < 500 and e.status != 429:
                return _Entry(None, None, now + self.ttl)  # no robots.txt: everything allowed
            if e.reason == "blocked_address":
                raise
            return _Entry(None, e.reason, now + self.retry_unavailable_after)
        parser = RobotFileParser()
        parser.parse(robots_lines(resp.body, resp.truncated))
        delay = parser.crawl_delay(self.agent)
        if delay:
            self.fetcher.limiter.slow_down(urlsplit(origin).netloc, min(float(delay), MAX_CRAWL_DELAY))
        return _Entry(parser, None, now + self.ttl)
