"""Probing one source, and recording what it answered as an offline fixture.

``akhbar sources probe --source ID --sources FILE`` probes every feed of one source.
``--save-fixture DIR`` also records every response (feeds, robots.txt, articles) into ``DIR``:

    DIR/index.json          {"version": 1, "source": ID, "feeds": [...], "articles": N, "obey_robots": B,
                             "recorded_at": ...,
                             "responses": [{"url", "final_url", "status", "content_type", "file"}]}
    DIR/responses/NNN.EXT   the bodies, byte for byte
    DIR/probe.txt           the probe's output, normalized (no timings, no byte counts)

:class:`FixtureServer` serves such a folder again on 127.0.0.1: ``scheme://host/path`` is served
at ``BASE/scheme/host/path`` and the same rewrite is applied inside the recorded bodies, so a
feed's article links lead back to the server. :func:`normalize` maps the server's URLs back to
the originals, so a replayed probe can be compared with ``probe.txt`` line for line: a golden
test of the source that runs offline.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from akhbar.transforms.http import FetchConfig, FetchError, Fetcher, Response

FIXTURE_VERSION = 1
_TIMING = re.compile(r"  \(\d+\.\d\d s, \d+ bytes\)")
_EXT = {"xml": ".xml", "rss": ".xml", "atom": ".xml", "html": ".html", "json": ".json", "plain": ".txt"}


@dataclass
class Recorded:
    url: str
    final_url: str | None
    status: int | None
    content_type: str | None
    body: bytes
    error: str | None = None


class RecordingFetcher:
    """A :class:`Fetcher` that keeps every answer (and every failure with a status)."""

    def __init__(self, fetcher: Fetcher):
        self._fetcher = fetcher
        self.recorded: list[Recorded] = []

    def fetch(self, url: str, **kw) -> Response:
        try:
            resp = self._fetcher.fetch(url, **kw)
        except FetchError as e:
            self.recorded.append(Recorded(url, None, e.status, None, b"", e.reason))
            raise
        self.recorded.append(Recorded(url, resp.final_url, resp.status, resp.content_type, resp.body))
        return resp

    def __getattr__(self, name):  # limiter, guard, … of the wrapped fetcher
        return getattr(self._fetcher, name)


def normalize(text: str, base_url: str | None = None) -> str:
    """Probe output without timings and byte counts; a replay server's URLs mapped back."""
    text = _TIMING.sub("", text)
    if base_url:
        text = re.sub(re.escape(base_url.rstrip("/")) + r"/(https?)/([^/\s]+)", r"\1://\2", text)
    return text


def _extension(content_type: str | None) -> str:
    sub = (content_type or "").split(";")[0].strip().lower().rpartition("/")[2]
    for key, ext in _EXT.items():
        if key in sub:
            return ext
    return ".bin"


def save_fixture(folder: str, source_id: str, feeds: list[str], recorded: list[Recorded], probe_text: str,
                 n_articles: int = 3, obey_robots: bool = True) -> str:
    os.makedirs(os.path.join(folder, "responses"), exist_ok=True)
    entries = []
    for i, r in enumerate(recorded, 1):
        name = None
        if r.error is None or r.body:
            name = f"responses/{i:03d}{_extension(r.content_type)}"
            with open(os.path.join(folder, name), "wb") as f:
                f.write(r.body)
        entries.append({"url": r.url, "final_url": r.final_url, "status": r.status,
                        "content_type": r.content_type, "file": name, "error": r.error})
    index = {"version": FIXTURE_VERSION, "source": source_id, "feeds": feeds, "articles": n_articles,
             "obey_robots": obey_robots,
             "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "responses": entries}
    path = os.path.join(folder, "index.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(index, f, ensure_ascii=False, indent=1)
    with open(os.path.join(folder, "probe.txt"), "w", encoding="utf-8") as f:
        f.write(normalize(probe_text))
    return path


def probe_source(sources_file: str, source_id: str, *, n_articles: int = 3, allow_private: bool = False,
                 save_to: str | None = None, host_interval: float | None = None, out=None) -> int:
    """Probe every feed of one source of a sources file; optionally record it as a fixture.

    Requests to one host start ``host_interval`` seconds apart (default: the source's
    ``min_interval``, else the fetcher's default of 1 s)."""
    out = out or sys.stdout
    from akhbar.schemas.sources import SourcesError, load_sources
    from akhbar.transforms.netguard import HostGuard

    try:
        sources = {s.id: s for s in load_sources(sources_file)}
    except SourcesError as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return 2
    if source_id not in sources:
        print(f"akhbar: no source {source_id!r} in {sources_file} (it has: {', '.join(sorted(sources))})",
              file=sys.stderr)
        return 2
    from akhbar.pipelines.probe import probe  # imports Beam: only once the arguments are known good

    src = sources[source_id]
    if host_interval is not None:  # --host-interval wins over the source's min_interval
        src = dataclasses.replace(src, min_interval_s=host_interval)
    interval = src.min_interval_s
    config = FetchConfig() if interval is None else FetchConfig(host_interval=interval)
    fetcher = RecordingFetcher(Fetcher(config, guard=HostGuard(allow_private=allow_private)))
    text = io.StringIO()
    worst = 0
    header = f"source  {src.id}  {len(src.feeds)} feed(s)\n"
    text.write(header)
    out.write(header)
    for feed in src.feeds:
        buf = io.StringIO()
        worst = max(worst, probe(feed, n_articles=n_articles, allow_private=allow_private, out=buf, fetcher=fetcher,
                                 source=src))
        block = "\n" + buf.getvalue()
        text.write(block)
        out.write(block)
    if save_to:
        path = save_fixture(save_to, src.id, list(src.feeds), fetcher.recorded, text.getvalue(), n_articles,
                            src.obey_robots)
        print(f"\nfixture: {len(fetcher.recorded)} responses recorded, index {path}", file=out)
    return worst


class FixtureServer:
    """Serves a recorded fixture folder on 127.0.0.1 (see the module docstring)."""

    def __init__(self, folder: str, port: int = 0):
        self.folder = folder
        with open(os.path.join(folder, "index.json"), encoding="utf-8") as f:
            self.index = json.load(f)
        self.port = port
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def local_url(self, url: str) -> str:
        u = urlsplit(url)
        return f"{self.base_url}/{u.scheme}/{u.netloc}{u.path or '/'}" + (f"?{u.query}" if u.query else "")

    def _rewrite(self, body: bytes) -> bytes:
        for origin in sorted(self._origins, key=len, reverse=True):
            scheme, _, host = origin.partition("://")
            body = body.replace(origin.encode(), f"{self.base_url}/{scheme}/{host}".encode())
        return body

    def __enter__(self) -> "FixtureServer":
        routes: dict[str, tuple[int, str | None, bytes]] = {}
        self._origins = set()
        for r in self.index["responses"]:
            for u in (r["url"], r.get("final_url")):
                if u:
                    s = urlsplit(u)
                    self._origins.add(f"{s.scheme}://{s.netloc}")
        raw = []
        for r in self.index["responses"]:
            body = b""
            if r.get("file"):
                with open(os.path.join(self.folder, r["file"]), "rb") as f:
                    body = f.read()
            raw.append((r, body))
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                fixture.requests.append(self.path)
                status, ctype, body = routes.get(self.path, (404, "text/plain", b"not recorded"))
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        for r, body in raw:
            key = self.local_url(r["url"])[len(self.base_url):]
            if r.get("error") and not r.get("status"):
                continue  # a failure without an answer (timeout, refused address): not served
            routes[key] = (r["status"] or 200, r.get("content_type"), self._rewrite(body))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


def replay_sources_yaml(server: FixtureServer) -> str:
    """A sources file whose one source reads its feeds from ``server`` (for golden tests)."""
    feeds = "".join(f"      - {server.local_url(u)}\n" for u in server.index["feeds"])
    robots = "" if server.index.get("obey_robots", True) else "    obey_robots: false\n"
    return f"sources:\n  - id: {server.index['source']}\n{robots}    feeds:\n{feeds}"
