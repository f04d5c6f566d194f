"""The fetch layer against a misbehaving server on 127.0.0.1."""
import gzip

import pytest

from akhbar.transforms.http import FetchConfig, FetchError, Fetcher, decode_document
from akhbar.transforms.netguard import HostGuard
from tests.servers import Reply

ARABIC = "<html><body><p>قال الأمين العام لحلف شمال الأطلسي إن الحلف سيواصل دعم أوكرانيا.</p></body></html>"


def fetcher(**cfg):
    sleeps = []
    f = Fetcher(FetchConfig(**{"backoff_base": 0.01, **cfg}), HostGuard(allow_private=True), sleep=sleeps.append)
    f.sleeps = sleeps
    return f


def test_ok_and_headers(server):
    url = server.route("/a", Reply(200, b"<p>x</p>", {"Content-Type": "text/html; charset=utf-8"}))
    r = fetcher().fetch(url)
    assert r.status == 200 and r.body == b"<p>x</p>" and r.content_type == "text/html; charset=utf-8"
    ua = server.hits[0][1]["user-agent"]
    assert ua.startswith("akhbar/") and "+http" in ua


def test_loopback_refused_by_default(server):
    url = server.route("/a", Reply(200, b"x"))
    with pytest.raises(FetchError) as e:
        Fetcher().fetch(url)
    assert e.value.reason == "blocked_address"
    assert server.hits == []  # refused before any packet


def test_404_is_permanent_and_not_retried(server):
    f = fetcher()
    with pytest.raises(FetchError) as e:
        f.fetch(server.url("/missing"))
    assert e.value.reason == "http_404" and not e.value.transient
    assert server.count("/missing") == 1


def test_503_is_retried_with_retry_after_then_succeeds(server):
    calls = []

    def flaky(_):
        calls.append(1)
        return Reply(503, b"busy", {"Retry-After": "2"}) if len(calls) < 3 else Reply(200, b"ok")

    f = fetcher(retries=3)
    r = f.fetch(server.route("/flaky", flaky))
    assert r.body == b"ok" and len(calls) == 3
    assert f.sleeps == [2.0, 2.0]


def test_transient_failures_give_up_after_bounded_retries(server):
    f = fetcher(retries=2)
    with pytest.raises(FetchError) as e:
        f.fetch(server.route("/down", Reply(500, b"boom")))
    assert e.value.reason == "http_500" and e.value.transient
    assert server.count("/down") == 3 and len(f.sleeps) == 2
    assert f.sleeps[1] > f.sleeps[0] * 1.0 or f.sleeps[1] >= 0.01  # exponential, jittered


def test_redirects_followed_and_recorded(server):
    server.route("/old", Reply(301, b"", {"Location": "/mid"}))
    server.route("/mid", Reply(302, b"", {"Location": server.url("/new")}))
    server.route("/new", Reply(200, b"here"))
    r = fetcher().fetch(server.url("/old"))
    assert r.final_url == server.url("/new") and r.redirects == (server.url("/mid"), server.url("/new"))


def test_redirect_loop_and_limit(server):
    server.route("/l1", Reply(302, b"", {"Location": "/l2"}))
    server.route("/l2", Reply(302, b"", {"Location": "/l1"}))
    with pytest.raises(FetchError) as e:
        fetcher().fetch(server.url("/l1"))
    assert e.value.reason == "redirect_loop"
    for i in range(10):
        server.route(f"/r{i}", Reply(302, b"", {"Location": f"/r{i + 1}"}))
    with pytest.raises(FetchError) as e:
        fetcher(max_redirects=3).fetch(server.url("/r0"))
    assert e.value.reason == "too_many_redirects"


def test_body_limit_enforced_while_streaming(server):
    big = b"x" * 300_000
    # lie about the length so only the streaming check can catch it
    server.route("/big", Reply(200, big, {"Content-Length": None, "Connection": "close"}))
    with pytest.raises(FetchError) as e:
        fetcher(max_bytes=100_000).fetch(server.url("/big"))
    assert e.value.reason == "too_large"
    server.route("/declared", Reply(200, big))
    with pytest.raises(FetchError, match="Content-Length"):
        fetcher(max_bytes=100_000).fetch(server.url("/declared"))


def test_gzip_bomb_stopped_at_the_same_limit(server):
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    server.route("/bomb", Reply(200, bomb, {"Content-Encoding": "gzip", "Content-Type": "text/html"}))
    with pytest.raises(FetchError) as e:
        fetcher(max_bytes=1_000_000).fetch(server.url("/bomb"))
    assert e.value.reason == "too_large"


def test_gzip_body_decoded(server):
    server.route("/gz", Reply(200, gzip.compress(ARABIC.encode()), {"Content-Encoding": "gzip"}))
    assert fetcher().fetch(server.url("/gz")).body.decode() == ARABIC


def test_read_timeout_is_transient(server):
    server.route("/slow", Reply(200, b"late", delay=1.5))
    f = fetcher(read_timeout=0.3, retries=1)
    with pytest.raises(FetchError) as e:
        f.fetch(server.url("/slow"))
    assert e.value.reason == "timeout" and e.value.transient and server.count("/slow") == 2


def test_total_timeout_on_a_trickling_body(server):
    server.route("/trickle", Reply(200, b"y" * 20_000, chunk_delay=0.1))
    with pytest.raises(FetchError) as e:
        fetcher(total_timeout=0.5, retries=0).fetch(server.url("/trickle"))
    assert e.value.reason == "timeout"


def test_connection_refused_is_transient():
    with pytest.raises(FetchError) as e:
        fetcher(retries=0, connect_timeout=1).fetch("http://127.0.0.1:9/")
    assert e.value.reason in ("connection_error", "timeout") and e.value.transient


@pytest.mark.parametrize("header, body, expected_enc", [
    ("text/html; charset=windows-1256", ARABIC.encode("cp1256"), "cp1256"),
    ("text/html", ('<meta charset="windows-1256">' + ARABIC).encode("cp1256"), "cp1256"),
    ("text/html", ARABIC.encode("cp1256"), "cp1256"),  # declared nowhere
    ("text/html; charset=iso-8859-6", ARABIC.encode("iso-8859-6", errors="ignore"), "iso8859-6"),
    ("text/html; charset=utf-8", ARABIC.encode("cp1256"), "cp1256"),  # declared wrongly
    (None, b"\xef\xbb\xbf" + ARABIC.encode(), "utf-8"),
])
def test_decode_document(header, body, expected_enc):
    text, enc = decode_document(body, header)
    assert enc == expected_enc
    assert "الأطلسي" in text or "الحلف" in text
