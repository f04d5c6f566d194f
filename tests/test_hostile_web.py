"""A batch run against a misbehaving site on 127.0.0.1: every bad case becomes the right dead
letter, every good and transient-then-OK page is written, memory stays bounded, and a second run
sends conditional requests and downloads no unchanged feed body."""
import gzip
import json
import os
import subprocess
import sys
import threading
from email.utils import format_datetime
from datetime import datetime, timezone

import duckdb
import pytest

from akhbar.sample.site import load_records
from tests.servers import Reply

RECORDS = load_records()


def article_html(i: int, charset_decl: str = '<meta charset="utf-8">') -> str:
    r = RECORDS[i]
    paras = "".join(f"<p>{p}</p>" for p in r["body"].split("\n"))
    return (f'<!DOCTYPE html><html lang="ar" dir="rtl"><head>{charset_decl}<title>{r["title"]}</title></head>'
            f"<body><nav>الرئيسية | سياسة</nav><article><h1>{r['title']}</h1>{paras}</article>"
            "<footer>جميع الحقوق محفوظة</footer></body></html>")


def once_failing(first: Reply, then: Reply):
    calls = []
    lock = threading.Lock()

    def handler(_):
        with lock:
            calls.append(1)
            n = len(calls)
        return first if n == 1 else then
    return handler


def huge_body():
    chunk = b"<p>" + b"x" * (1 << 20) + b"</p>"
    for _ in range(1024):  # 1 GiB if anyone read it all
        yield chunk


HTML = {"Content-Type": "text/html; charset=utf-8"}
GOOD = {f"/good/{i}.html": i for i in range(3)}
TRANSIENT = ["/flaky-500.html", "/rate-429.html", "/reset.html"]
ENCODED = ["/cp1256-undeclared.html", "/cp1256-declared-latin1.html"]
BAD = {
    "/loop-a.html": "redirect_loop",
    "/huge.html": "too_large",
    "/bomb.html": "too_large",
    "/hang.html": "timeout",
    "/report.pdf": "unsupported_content_type",
    "/private/secret.html": "robots_disallowed",
    "/missing.html": "http_404",
    "/always-503.html": "http_503",
}


@pytest.fixture()
def hostile(server):
    for path, i in GOOD.items():
        server.route(path, Reply(200, article_html(i).encode(), HTML))
    server.route("/flaky-500.html", once_failing(Reply(500, b"oops"), Reply(200, article_html(3).encode(), HTML)))
    server.route("/rate-429.html", once_failing(Reply(429, b"slow down", {"Retry-After": "1"}),
                                                Reply(200, article_html(4).encode(), HTML)))
    server.route("/reset.html", once_failing(Reply(abort=True), Reply(200, article_html(5).encode(), HTML)))
    server.route("/cp1256-undeclared.html", Reply(200, article_html(6, "").encode("cp1256"), {"Content-Type": "text/html"}))
    server.route("/cp1256-declared-latin1.html", Reply(200, article_html(7, "").encode("cp1256"),
                                                       {"Content-Type": "text/html; charset=iso-8859-1"}))
    server.route("/loop-a.html", Reply(302, b"", {"Location": "/loop-b.html"}))
    server.route("/loop-b.html", Reply(302, b"", {"Location": "/loop-a.html"}))
    server.route("/huge.html", Reply(200, chunks=huge_body(), headers={"Content-Type": "text/html"}))
    server.route("/bomb.html", Reply(200, gzip.compress(b" " * 200_000_000), {"Content-Type": "text/html", "Content-Encoding": "gzip"}))
    server.route("/hang.html", Reply(200, article_html(8).encode(), HTML, delay=3))
    server.route("/report.pdf", Reply(200, b"%PDF-1.4 ...", {"Content-Type": "application/pdf"}))
    server.route("/private/secret.html", Reply(200, article_html(9).encode(), HTML))
    server.route("/always-503.html", Reply(503, b"down"))
    server.route("/robots.txt", Reply(200, b"User-agent: *\nDisallow: /private/\n", {"Content-Type": "text/plain"}))
    now = format_datetime(datetime(2025, 1, 2, tzinfo=timezone.utc), usegmt=True)
    links = list(GOOD) + TRANSIENT + ENCODED + list(BAD)
    items = "".join(f"<item><title>خبر {n}</title><link>{server.url(p)}</link><pubDate>{now}</pubDate></item>"
                    for n, p in enumerate(links))
    feed = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>موقع</title>{items}</channel></rss>'.encode()

    def feed_handler(handler):
        if handler.headers.get("If-None-Match") == '"feed-v1"':
            return Reply(304, b"", {"ETag": '"feed-v1"'})
        return Reply(200, feed, {"Content-Type": "application/rss+xml", "ETag": '"feed-v1"'})

    server.route("/feed.xml", feed_handler)
    server.route("/laughs.xml", Reply(200, b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><rss>&b;</rss>',
                                      {"Content-Type": "application/xml"}))
    server.route("/not-a-feed.xml", Reply(200, b"<html><body>hello</body></html>", {"Content-Type": "text/xml"}))
    return server


def run(sources, out):
    """akhbar run in a fresh process; returns (exit code, peak RSS in MiB, stdout)."""
    code = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300); "
            "print(r.stdout + r.stderr); print('RC', r.returncode, 'RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "akhbar", "run", "--sources", str(sources),
           "--output", str(out), "--allow-private-hosts", "--host-interval", "0", "--read-timeout", "1",
           "--total-timeout", "5", "--retries", "2", "--max-bytes", str(4 << 20)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=320, env={**os.environ, "NO_GCE_CHECK": "true"})
    last = proc.stdout.strip().splitlines()[-1].split()
    return int(last[1]), int(last[3]) / 1024, proc.stdout


def test_hostile_site_end_to_end(hostile, tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - id: hostile\n    feeds:\n" + "".join(
        f"      - {hostile.url(p)}\n" for p in ("/feed.xml", "/laughs.xml", "/not-a-feed.xml")), encoding="utf-8")
    out = tmp_path / "out"
    rc, rss_mb, stdout = run(sources, out)
    assert rc == 0, stdout
    print(f"hostile-site run: peak RSS {rss_mb:.0f} MiB")
    assert rss_mb < 1024, f"peak RSS {rss_mb:.0f} MiB"
    con = duckdb.connect()
    rows = con.execute(f"SELECT url, encoding, body FROM read_parquet('{out}/articles/**/*.parquet', hive_partitioning=true)").fetchall()
    written = {r[0].removeprefix(hostile.base_url): r for r in rows}
    assert set(written) == set(GOOD) | set(TRANSIENT) | set(ENCODED)
    assert written["/cp1256-undeclared.html"][1] == "cp1256" and written["/cp1256-declared-latin1.html"][1] == "cp1256"
    assert all("الناتو" in written[p][2] or "ال" in written[p][2] for p in ENCODED)  # Arabic, not mojibake
    dead = con.execute(f"SELECT url, stage, reason FROM read_parquet('{out}/dead_letter/**/*.parquet')").fetchall()
    by_url = {u.removeprefix(hostile.base_url): (stage, reason) for u, stage, reason in dead}
    for path, reason in BAD.items():
        assert by_url.get(path, (None, None))[1] == reason, (path, by_url.get(path))
    assert by_url["/laughs.xml"] == ("poll", "hostile_xml") and by_url["/not-a-feed.xml"] == ("poll", "feed_parse_error")
    assert len(dead) == len(BAD) + 2  # nothing else failed, nothing failed twice
    assert hostile.count("/robots.txt") == 1  # fetched once, cached
    assert hostile.count("/private/secret.html") == 0  # disallowed pages are never requested
    state = json.loads((out / "_state" / "feeds.json").read_text())
    feed = {f["feed_url"].removeprefix(hostile.base_url): f for f in state["feeds"]}
    assert feed["/feed.xml"]["etag"] == '"feed-v1"' and feed["/feed.xml"]["consecutive_failures"] == 0
    assert feed["/laughs.xml"]["consecutive_failures"] == 1 and feed["/laughs.xml"]["last_error"] == "hostile_xml"

    # second run: the unchanged feed is asked for conditionally and answers 304; nothing is re-downloaded
    before = len(hostile.hits)
    rc, _, stdout = run(sources, out)
    assert rc == 0, stdout
    feed_hits = [h for p, h in hostile.hits[before:] if p == "/feed.xml"]
    assert len(feed_hits) == 1 and feed_hits[0].get("if-none-match") == '"feed-v1"'
    pages = [p for p, _ in hostile.hits[before:] if p.endswith(".html")]
    assert pages == []
    assert con.execute(f"SELECT count(*) FROM read_parquet('{out}/articles/**/*.parquet')").fetchone()[0] == len(rows)
    state = json.loads((out / "_state" / "feeds.json").read_text())
    assert {f["feed_url"].removeprefix(hostile.base_url): f["not_modified"] for f in state["feeds"]}["/feed.xml"] == 1
