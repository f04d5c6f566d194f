"""A loopback news site whose feeds gain new articles while it runs (streaming-mode tests and
the streaming benchmark).

Every article is synthetic: its title and body are drawn, with a seeded random generator, from
the words of the bundled sample articles (``articles.jsonl``), so bodies are Arabic, long enough
to pass extraction, and far from each other (no accidental exact or near-duplicates). Each feed
lists its newest ``feed_size`` items (RSS 2.0 with an ETag, so conditional GETs are exercised);
``add()`` publishes one more item and records the moment it appeared in its feed.

A site can be slow on purpose (``feed_delay``, ``page_delay``: seconds it takes to send a feed or
an article page, its body dripped in ten parts so that no read timeout cuts it off), to stand for
a distant or overloaded outlet next to fast ones. A slow feed sends no ETag: every poll of it
takes that long.
"""
from __future__ import annotations

import random
import re
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import yaml

from akhbar.sample.site import load_records

_ARABIC_WORD = re.compile(r"^[\u0621-\u064a]{3,}$")


def _vocabulary() -> list[str]:
    words = {w for r in load_records() for w in (r["title"] + " " + r["body"]).split() if _ARABIC_WORD.match(w)}
    return sorted(words)


class GrowingSite:
    """Serve ``sources`` outlets, each with one RSS feed, on 127.0.0.1.

    ``appeared`` maps each article URL to the time (``time.time()``) it was added to its feed.
    """

    def __init__(self, sources: int = 3, feed_size: int = 40, seed: int = 7, words: int = 90,
                 grow_on_poll: tuple[str, ...] = (), prefix: str = "grow", feed_delay: float = 0.0,
                 page_delay: float = 0.0):
        self.grow_on_poll = set(grow_on_poll)  # these outlets gain one article just before each feed request
        self.source_ids = [f"{prefix}{i}" for i in range(sources)]
        self.feed_delay = feed_delay  # seconds a feed takes to send
        self.page_delay = page_delay  # seconds an article page takes to send
        self.feed_size = feed_size
        self.words = words
        self.rng = random.Random(seed)
        self.vocab = _vocabulary()
        self.items: dict[str, list[dict]] = {s: [] for s in self.source_ids}
        self.pages: dict[str, bytes] = {}
        self.appeared: dict[str, float] = {}
        self.requests: list[str] = []
        self.served: list[tuple[str, float, float]] = []  # (path, time.time() at request, when answered)
        self._lock = threading.Lock()
        self._n = 0
        self.base_url = ""

    # --- content -------------------------------------------------------------------------------
    def _text(self, n: int) -> str:
        return " ".join(self.rng.choice(self.vocab) for _ in range(n))

    def add(self, source_id: str | None = None) -> str:
        """Publish one new article (on ``source_id`` or the next outlet in turn); return its URL."""
        with self._lock:
            sid = source_id or self.source_ids[self._n % len(self.source_ids)]
            self._n += 1
            path = f"/{sid}/story-{self._n:06d}.html"
            title = self._text(7)
            paras = [self._text(self.words // 3) + "." for _ in range(3)]
            now = datetime.now(timezone.utc)
            body = "".join(f"<p>{escape(p)}</p>\n" for p in paras)
            self.pages[path] = (
                f'<!DOCTYPE html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{escape(title)}</title>'
                f'<meta property="article:published_time" content="{now.isoformat()}"></head><body>'
                f"<header><nav><a href='/'>الرئيسية</a></nav></header><main><article><h1>{escape(title)}</h1>"
                f"{body}</article></main><footer>جميع الحقوق محفوظة</footer></body></html>"
            ).encode()
            url = self.base_url + path
            self.items[sid].append({"title": title, "link": url, "when": now, "summary": paras[0][:120]})
            self.appeared[url] = time.time()
            return url

    def feed(self, sid: str) -> tuple[bytes, str]:
        with self._lock:
            items = list(reversed(self.items[sid][-self.feed_size:]))
            etag = f'"{sid}-{len(self.items[sid])}"'
        entries = "\n".join(
            f"<item><title>{escape(it['title'])}</title><link>{escape(it['link'])}</link>"
            f"<guid isPermaLink=\"true\">{escape(it['link'])}</guid>"
            f"<pubDate>{format_datetime(it['when'], usegmt=True)}</pubDate>"
            f"<description>{escape(it['summary'])}</description></item>"
            for it in items
        )
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{sid}</title>'
                f"<link>{self.base_url}/{sid}/</link><description>{sid}</description><language>ar</language>"
                f"{entries}</channel></rss>").encode()
        return body, etag

    def sources_yaml(self, poll_interval: int = 10) -> str:
        doc = {"sources": [{"id": sid, "name": f"Growing {sid}", "language": "ar",
                            "feeds": [f"{self.base_url}/{sid}/rss.xml"], "poll_interval": poll_interval,
                            "min_interval": 0, "obey_robots": False}
                           for sid in self.source_ids]}
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)

    # --- server --------------------------------------------------------------------------------
    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):  # noqa: N802 - the name http.server calls
                path = urlsplit(self.path).path
                begun = time.time()
                with site._lock:
                    site.requests.append(path)
                try:
                    self._answer(path)
                finally:
                    with site._lock:
                        site.served.append((path, begun, time.time()))

            def _answer(self, path: str) -> None:
                status, ctype, body, headers, delay = 404, "text/plain", b"not found", {}, 0.0
                parts = path.strip("/").split("/")
                if len(parts) == 2 and parts[1] == "rss.xml" and parts[0] in site.items:
                    if parts[0] in site.grow_on_poll:
                        site.add(parts[0])
                    body, etag = site.feed(parts[0])
                    delay = site.feed_delay
                    if not delay and self.headers.get("If-None-Match") == etag:
                        status, body = 304, b""
                    else:
                        status, ctype = 200, "application/rss+xml; charset=utf-8"
                    headers = {} if delay else {"ETag": etag}
                elif path in site.pages:
                    status, ctype, body, delay = 200, "text/html; charset=utf-8", site.pages[path], site.page_delay
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not delay:
                    self.wfile.write(body)
                    return
                step = -(-len(body) // 10)
                try:
                    for i in range(0, len(body), step):  # ten parts, a tenth of the delay apart
                        time.sleep(delay / 10)
                        self.wfile.write(body[i:i + step])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout of its own)

        return Handler

    def __enter__(self) -> GrowingSite:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="akhbar-growing-site", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def grow_every(self, seconds: float, stop: threading.Event, until: float | None = None) -> threading.Thread:
        """Add one article every ``seconds`` (outlets in turn) from a daemon thread until ``stop``
        is set or ``time.time()`` passes ``until``."""

        def loop():
            while not stop.wait(seconds):
                if until is not None and time.time() > until:
                    return
                self.add()

        t = threading.Thread(target=loop, name="akhbar-growing-site-clock", daemon=True)
        t.start()
        return t
