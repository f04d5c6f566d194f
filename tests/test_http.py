"""The fetch layer against a misbehaving server on 127.0.0.1."""
import gzip
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from urllib.parse import quote

import pytest
import urllib3.response

from akhbar.transforms.http import (FetchConfig, FetchError, Fetcher, HostLimiter, HostPolicy, _Watchdog,
                                    decode_document, html_of, redirect_target)
from akhbar.transforms.netguard import HostGuard, LookupThreads
from akhbar.transforms.robots import RobotsCache
from tests.servers import RawServer, Reply, drip

ARABIC = "<html><body><p>قال الأمين العام لحلف شمال الأطلسي إن الحلف سيواصل دعم أوكرانيا.</p></body></html>"


def fetcher(**cfg):
    sleeps = []
    f = Fetcher(FetchConfig(**{"backoff_base": 0.01, "host_interval": 0, **cfg}), HostGuard(allow_private=True),
                sleep=sleeps.append)
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
    assert len(f.sleeps) == 2 and all(1.5 < s <= 2.0 for s in f.sleeps)  # the host was held off 2 s each time


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
    # urllib3 2 makes a refused connection a ConnectTimeoutError too: it is still connection_error
    assert e.value.reason == "connection_error" and e.value.transient


@pytest.mark.parametrize("header, body, expected_enc", [
    ("text/html; charset=windows-1256", ARABIC.encode("cp1256"), "cp1256"),
    ("text/html", ('<meta charset="windows-1256">' + ARABIC).encode("cp1256"), "cp1256"),
    ("text/html", ARABIC.encode("cp1256"), "cp1256"),  # declared nowhere
    ("text/html; charset=iso-8859-6", ARABIC.encode("iso-8859-6", errors="ignore"), "iso8859-6"),
    ("text/html; charset=utf-8", ARABIC.encode("cp1256"), "cp1256"),  # declared wrongly
    (None, b"\xef\xbb\xbf" + ARABIC.encode(), "utf-8"),
    ("text/html; charset=iso-8859-1", ARABIC.encode("cp1256"), "cp1256"),  # Apache's default, wrong
    ("text/html", ('<meta charset="windows-1252">' + ARABIC).encode("cp1256"), "cp1256"),
])
def test_decode_document(header, body, expected_enc):
    """header → BOM → document declaration → detection; a declaration that cannot be right is overruled."""
    text, enc = decode_document(body, header)
    assert enc == expected_enc
    assert "الأطلسي" in text or "الحلف" in text


PUBLIC = "93.184.216.34"  # stands for a public news site; the connector below maps it to our loopback server


def guarded(server, extra_hosts=None, resolver=None, lookups=None, **cfg):
    """A fetcher that refuses private hosts, with a resolver and connector that never leave
    loopback: 'news.test' 'resolves' to a public-looking address, which is connected to the
    test server; any other connection attempt fails the test. ``resolver`` replaces the table
    lookup (it is given the host and the table's answer)."""
    from urllib3.util.connection import create_connection

    port = int(server.base_url.rsplit(":", 1)[1])
    table = {"news.test": [PUBLIC], **(extra_hosts or {})}
    attempts = []

    def connector(addr, timeout, source_address=None, socket_options=None):
        attempts.append(addr)
        assert addr == (PUBLIC, port), f"guard let a connection to {addr} through"
        return create_connection(("127.0.0.1", port), timeout, socket_options=socket_options)

    resolve = (lambda h, p: resolver(h, table[h])) if resolver else (lambda h, p: table[h])
    guard = HostGuard(allow_private=False, resolver=resolve, connector=connector, lookups=lookups)
    f = Fetcher(FetchConfig(**{"retries": 0, "host_interval": 0, **cfg}), guard)
    f.attempts = attempts
    f.base = f"http://news.test:{port}"
    return f


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://2852039166/",
    "http://evil.test/admin", "http://127.0.0.1:9/", "http://0177.0.0.1/", "http://localhost/",
])
def test_redirect_to_a_private_address_is_refused_before_connecting(server, location):
    server.route("/go", Reply(302, b"", {"Location": location}))
    f = guarded(server, {"evil.test": ["10.0.0.1"]})
    with pytest.raises(FetchError) as e:
        f.fetch(f.base + "/go")
    assert e.value.reason == "blocked_address" and not e.value.transient
    assert len(f.attempts) == 1  # only the first hop, to the public site, was connected


def test_guarded_fetch_of_a_public_host_works(server):
    server.route("/ok", Reply(200, b"fine"))
    f = guarded(server)
    assert f.fetch(f.base + "/ok").body == b"fine"


@pytest.mark.parametrize("url", ["ftp://news.test/x", "file:///etc/passwd", "gopher://news.test/"])
def test_only_http_and_https(url):
    with pytest.raises(FetchError) as e:
        Fetcher(FetchConfig(retries=0)).fetch(url)
    assert e.value.reason == "bad_url"


def test_redirect_to_another_scheme_is_refused(server):
    server.route("/f", Reply(301, b"", {"Location": "file:///etc/passwd"}))
    with pytest.raises(FetchError) as e:
        fetcher().fetch(server.url("/f"))
    assert e.value.reason == "bad_url"


def test_a_french_page_declared_latin1_stays_latin1():
    page = "<html><body><p>Le président français a déclaré à Bruxelles que l'OTAN était prête.</p></body></html>"
    text, enc = decode_document(page.encode("iso-8859-1"), "text/html; charset=iso-8859-1")
    assert enc == "iso8859-1" and "président" in text


def test_politeness_interval_between_requests_to_one_host(server):
    server.route("/p", Reply(200, b"x"))
    f = Fetcher(FetchConfig(host_interval=0.3, host_concurrency=4), HostGuard(allow_private=True))
    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: f.fetch(server.url("/p")), range(4)))
    assert time.monotonic() - t0 >= 0.85  # starts at 0, .3, .6, .9


def test_politeness_concurrency_limit_and_per_source_policy(server):
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(_):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return Reply(200, b"x")

    server.route("/s", slow)
    f = Fetcher(FetchConfig(host_interval=0, host_concurrency=8), HostGuard(allow_private=True))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: f.fetch(server.url("/s"), policy=HostPolicy(interval=0, concurrency=2)), range(8)))
    assert state["max"] == 2


def test_retry_after_holds_off_the_whole_host():
    clock = {"t": 0.0}
    slept = []
    limiter = HostLimiter(sleep=lambda s: (slept.append(s), clock.__setitem__("t", clock["t"] + s)),
                          clock=lambda: clock["t"])
    policy = HostPolicy(interval=0.0, concurrency=2)
    with limiter.slot("a.example", policy):
        pass
    limiter.hold_off("a.example", 5)
    with limiter.slot("a.example", policy):
        pass
    with limiter.slot("b.example", policy):
        pass
    assert slept == [5.0]
    limiter.slow_down("a.example", 2.0)  # a robots.txt crawl-delay
    with limiter.slot("a.example", policy):
        pass
    with limiter.slot("a.example", policy):
        pass
    assert slept == [5.0, 2.0]


def test_conditional_get_304(server):
    def feed(handler):
        if handler.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"")
        return Reply(200, b"<rss/>", {"ETag": '"v1"'})

    url = server.route("/feed", feed)
    f = fetcher()
    first = f.fetch(url)
    assert first.status == 200 and first.headers["etag"] == '"v1"'
    second = f.fetch(url, headers={"If-None-Match": '"v1"'})
    assert second.status == 304 and second.body == b""
    with pytest.raises(FetchError) as e:  # an unasked-for 304 is a failure
        server.route("/odd", Reply(304, b""))
        f.fetch(server.url("/odd"))
    assert e.value.reason == "http_304"


# --- a malformed redirect target is a bad_url, not a crash or a connection error -----------------

@pytest.mark.parametrize("location", ["http://[::1/x", "http://127.0.0.1:99999/x", "http://127.0.0.1:abc/x"])
def test_redirect_to_a_malformed_url_is_bad_url(server, location):
    server.route("/go", Reply(302, b"", {"Location": location}))
    with pytest.raises(FetchError) as e:
        fetcher().fetch(server.url("/go"))
    assert e.value.reason == "bad_url" and not e.value.transient


# --- the total timeout bounds the whole fetch ----------------------------------------------------

def timed_fetch(f, url, **kw):
    t0 = time.monotonic()
    with pytest.raises(FetchError) as e:
        f.fetch(url, **kw)
    return e.value, time.monotonic() - t0


def test_total_timeout_cuts_a_body_dripped_byte_by_byte():
    stop = threading.Event()
    body = b"<p>" + b"x" * 200 + b"</p>"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body)
    with RawServer(drip(head, [bytes([b]) for b in body], 0.25, stop)) as srv:
        err, took = timed_fetch(fetcher(total_timeout=2, read_timeout=1, retries=2), srv.url("/p"))
        stop.set()
    assert err.reason == "timeout" and took < 2 + 3


def test_total_timeout_cuts_header_lines_dripped_one_by_one():
    stop = threading.Event()
    lines = [b"X-Drip-%d: aaaa\r\n" % i for i in range(200)]
    with RawServer(drip(b"HTTP/1.1 200 OK\r\n", lines, 0.25, stop)) as srv:
        err, took = timed_fetch(fetcher(total_timeout=2, read_timeout=1, retries=2), srv.url("/p"))
        stop.set()
    assert err.reason == "timeout" and took < 2 + 3


def test_total_timeout_spans_redirect_hops_and_retries(server):
    # every hop answers within the read timeout, but the chain as a whole takes far too long
    for i in range(5):
        server.route(f"/hop{i}", Reply(302, b"", {"Location": f"/hop{i + 1}"}, delay=0.8))
    server.route("/hop5", Reply(503, b"busy", delay=0.8))
    f = fetcher(total_timeout=2, read_timeout=1.5, retries=3)
    f._sleep = time.sleep  # real backoff pauses: they count too
    err, took = timed_fetch(f, server.url("/hop0"))
    assert err.reason == "timeout" and took < 2 + 3


# --- Retry-After -----------------------------------------------------------------------------

def test_a_retry_after_beyond_the_cap_fails_at_once_and_holds_the_host_off(server):
    server.route("/a", Reply(429, b"slow down", {"Retry-After": "99999"}))
    server.route("/b", Reply(200, b"fine"))
    f = fetcher(retries=2)
    t0 = time.monotonic()
    with pytest.raises(FetchError) as e:
        f.fetch(server.url("/a"))
    assert e.value.reason == "http_429" and e.value.transient  # replayable
    with pytest.raises(FetchError) as e:  # the host asked for a day off: not asked again now
        f.fetch(server.url("/b"))
    assert e.value.reason == "http_429"
    assert server.count("/a") == 1 and server.count("/b") == 0 and f.sleeps == []
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("value", ["0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_of_now_or_the_past_gets_the_normal_backoff(server, value):
    calls = []

    def flaky(_):
        calls.append(1)
        return Reply(503, b"busy", {"Retry-After": value}) if len(calls) < 2 else Reply(200, b"ok")

    f = fetcher(retries=2, backoff_base=0.2)
    assert f.fetch(server.route("/flaky", flaky)).body == b"ok"
    assert len(f.sleeps) == 1 and f.sleeps[0] >= 0.1  # a real pause, not an immediate retry


# --- reason codes ------------------------------------------------------------------------------

@pytest.mark.parametrize("coding", ["br", "zstd", "gzip, br"])
def test_a_content_encoding_we_cannot_decode_is_bad_encoding(server, coding):
    if coding.split(",")[-1].strip() in urllib3.response.HTTPResponse.CONTENT_DECODERS:
        pytest.skip(f"{coding} is decodable here")
    server.route("/c", Reply(200, bytes(range(256)) * 10, {"Content-Type": "text/html", "Content-Encoding": coding}))
    with pytest.raises(FetchError) as e:
        fetcher().fetch(server.url("/c"))
    assert e.value.reason == "bad_encoding"


def test_an_interim_103_early_hints_is_skipped():
    page = "<p>مرحبا</p>".encode()

    def early_hints(sock, path):
        sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(page), page))

    with RawServer(early_hints) as srv:
        r = fetcher().fetch(srv.url("/p"))
    assert r.status == 200 and r.body == page


def test_gzip_without_content_encoding_is_decompressed(server):
    server.route("/gz", Reply(200, gzip.compress(ARABIC.encode()), {"Content-Type": "text/html; charset=utf-8"}))
    assert fetcher().fetch(server.url("/gz")).body.decode() == ARABIC
    server.route("/bomb", Reply(200, gzip.compress(b" " * 5_000_000), {"Content-Type": "text/html"}))
    with pytest.raises(FetchError) as e:
        fetcher(max_bytes=1_000_000).fetch(server.url("/bomb"))
    assert e.value.reason == "too_large"
    server.route("/junk", Reply(200, b"\x1f\x8b" + bytes(range(200)), {"Content-Type": "text/html"}))
    with pytest.raises(FetchError) as e:
        fetcher().fetch(server.url("/junk"))
    assert e.value.reason == "bad_encoding"


def test_keep_prefix_cuts_a_long_body_instead_of_failing(server):
    server.route("/long", Reply(200, b"a" * 300_000))
    r = fetcher().fetch(server.url("/long"), max_bytes=100_000, keep_prefix=True)
    assert r.truncated and r.body == b"a" * 100_000


# --- a Location with raw UTF-8 ---------------------------------------------------------------

def test_a_location_with_raw_utf8_arabic_is_followed_to_the_right_url(server):
    slug = "/news/مقال-عاجل"
    # http.server sends header values as Latin-1: these are the raw UTF-8 bytes on the wire
    server.route("/short", Reply(301, b"", {"Location": slug.encode("utf-8").decode("latin-1")}))
    server.route(quote(slug), Reply(200, b"found"))
    r = fetcher().fetch(server.url("/short"))
    assert r.body == b"found" and r.final_url == server.url(quote(slug))


def test_redirect_target_helper():
    assert redirect_target("http://a.test/x", "/b c") == "http://a.test/b%20c"
    assert redirect_target("http://a.test/x", "http://a.test/%D9%85") == "http://a.test/%D9%85"
    assert redirect_target("http://a.test/x", "/é".encode("latin-1").decode("latin-1")) == "http://a.test/%C3%A9"


# --- decoding: one bad byte, or a wrong single-byte declaration, does not make mojibake ----------

PAGE = ('<html><head><meta charset="utf-8"><title>خبر عاجل</title></head><body><p>قال الأمين العام لحلف '
        'الناتو إن الدعم لأوكرانيا مستمر</p></body></html>')


@pytest.mark.parametrize("body, header", [
    (PAGE.encode().replace(b"<body>", b"<body>\xff"), "text/html; charset=utf-8"),  # a stray byte
    (PAGE.encode().replace(b"<body>", b"<body>\xff"), "text/html"),  # undeclared
    (PAGE.encode()[:-len("</p></body></html>") - 1], "text/html; charset=utf-8"),  # last character cut
    (PAGE.encode(), "text/html; charset=windows-1256"),  # UTF-8 under a single-byte header
    (PAGE.replace('charset="utf-8"', 'charset="windows-1256"').encode(), "text/html"),  # … or meta
    (PAGE.encode(), "text/html; charset=iso-8859-1"),
])
def test_utf8_with_a_few_bad_bytes_or_a_wrong_declaration_stays_utf8(body, header):
    text, enc = decode_document(body, header)
    assert enc == "utf-8" and "<title>خبر عاجل</title>" in text


def test_iso_8859_6_under_a_latin1_header_is_iso_8859_6():
    page = PAGE.replace('<meta charset="utf-8">', "")
    text, enc = decode_document(page.encode("iso8859_6"), "text/html; charset=iso-8859-1")
    assert enc == "iso8859-6" and text == page


# No ف ق ك غ ـ and only ASCII punctuation: as windows-1256 bytes this page also decodes as ISO-8859-6
# without a single error (and the reverse), into the wrong letters: no failing decode gives it away.
NEWS = ("<html><head><title>روسيا تواصل هجماتها على مدن الجنوب</title></head><body><p>أعلن الأمين العام أن "
        "الدول الأعضاء ستعلن التزاماتها الجديدة خلال الأسبوع, وأن روسيا تواصل هجماتها على مدن الجنوب, وأن "
        "الجيش صد عدة محاولات هجوم جديدة.</p></body></html>")
TWIN = {"cp1256": "iso8859_6", "iso8859_6": "cp1256"}


@pytest.mark.parametrize("codec, declared", [("iso8859_6", "windows-1256"), ("cp1256", "iso-8859-6"),
                                             ("iso8859_6", "iso-8859-6"), ("cp1256", "windows-1256")])
@pytest.mark.parametrize("where", ["header", "meta"])
def test_windows_1256_and_iso_8859_6_are_read_as_what_they_are_whatever_they_declare(server, codec, declared, where):
    page = NEWS if where == "header" else NEWS.replace("<head>", f'<head><meta charset="{declared}">')
    body = page.encode(codec)
    assert body.decode(TWIN[codec]) != page  # the other code page reads it without an error, wrongly
    ctype = f"text/html; charset={declared}" if where == "header" else "text/html"
    text, enc = html_of(fetcher().fetch(server.route("/p", Reply(200, body, {"Content-Type": ctype}))))
    assert enc == codec.replace("_", "-") and text == page


def test_a_long_page_in_the_other_arabic_code_page_is_read_right(server):
    page = "<html><body>" + "".join(f"<p>{ARABIC} {PAGE} {NEWS}</p>" for _ in range(40)) + "</body></html>"
    server.route("/iso", Reply(200, page.encode("iso8859_6", errors="ignore"),
                               {"Content-Type": "text/html; charset=windows-1256"}))
    text, enc = html_of(fetcher().fetch(server.url("/iso")))
    assert enc == "iso8859-6" and "قال الأمين العام لحلف الناتو إن الدعم لأوكرانيا مستمر" in text


@pytest.mark.parametrize("codec", ["cp1256", "iso8859_6"])
def test_a_page_with_little_arabic_keeps_its_declared_arabic_code_page(codec):
    # French in windows-1256 (its accented letters are where ISO-8859-6 has Arabic ones), one Arabic
    # name: too little Arabic to overrule anything
    page = "<p>Le président a déclaré à Bruxelles que l'OTAN était prête. الناتو</p>"
    body = page.encode(codec, errors="ignore")
    declared = "windows-1256" if codec == "cp1256" else "iso-8859-6"
    text, enc = decode_document(body, f"text/html; charset={declared}")
    assert enc == codec.replace("_", "-") and "الناتو" in text


@pytest.mark.parametrize("header", ["text/html", "text/html; charset=utf-16", "text/html; charset=utf-8"])
def test_utf16_without_a_bom(header):
    for codec in ("utf-16-le", "utf-16-be"):
        text, enc = decode_document(PAGE.encode(codec), header)
        assert enc == codec and text == PAGE


def test_a_utf16_header_over_a_utf8_body_is_overruled():
    text, enc = decode_document(PAGE.encode(), "text/html; charset=utf-16")
    assert enc == "utf-8" and text == PAGE


def test_one_thread_fires_every_hops_deadline_and_a_cancelled_hop_is_left_alone():
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        before = threading.active_count()
        dogs = [_Watchdog(s) for s in (0.3, 0.1, 0.2)]
        for dog, (a, _) in zip(dogs, pairs):
            dog.watch(a)
        dogs[2].cancel()  # its hop ended: its socket may be back in the pool, in another hop's hands
        assert threading.active_count() <= before + 1  # one deadline thread at most, not one per hop
        time.sleep(0.6)
        assert [d.fired for d in dogs] == [True, True, False]
        for (a, b), cut in zip(pairs, (True, True, False)):
            b.settimeout(0.5)
            if cut:
                assert a.recv(1) == b""  # shut down: a blocked read would end at once
            else:
                b.sendall(b"x")
                assert a.recv(1) == b"x"
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# --- name resolution counts against the total timeout ------------------------------------------

class SlowDNS:
    """An injected resolver that answers (from the test's table, never the network) only when
    released, or after ``hang`` seconds: a DNS server that does not answer."""

    def __init__(self, hang: float = 15.0, slow=lambda host: True):
        self.release = threading.Event()
        self.hang = hang
        self.slow = slow
        self.calls: list[str] = []

    def __call__(self, host, answer):
        self.calls.append(host)
        if self.slow(host):
            self.release.wait(self.hang)
        return answer


def test_a_hanging_resolver_is_cut_off_when_the_total_timeout_runs_out(server):
    server.route("/a", Reply(200, b"fine"))
    dns = SlowDNS()
    f = guarded(server, resolver=dns, lookups=LookupThreads(size=2), total_timeout=1, retries=2)
    try:
        err, took = timed_fetch(f, f.base + "/a")
    finally:
        dns.release.set()
    assert err.reason == "timeout" and err.transient and took < 1 + 1.5
    assert "resolving news.test took longer than" in str(err) and "--total-timeout" in str(err)
    assert f.attempts == [] and server.hits == []


def test_resolution_shares_the_budget_with_the_hops_before_it(server):
    # the first hop takes 0.7 s of the 1.5 s; the redirect's host then resolves too slowly
    server.route("/a", Reply(302, b"", {"Location": "/b"}, delay=0.7))
    server.route("/b", Reply(302, b"", {"Location": "http://slow.test:%s/c" % server.base_url.rsplit(":", 1)[1]}))
    dns = SlowDNS(slow=lambda host: host == "slow.test")
    f = guarded(server, {"slow.test": [PUBLIC]}, resolver=dns, lookups=LookupThreads(size=2), total_timeout=1.5)
    try:
        err, took = timed_fetch(f, f.base + "/a")
    finally:
        dns.release.set()
    assert err.reason == "timeout" and "resolving slow.test" in str(err) and 1.4 < took < 1.5 + 1.5


def test_hanging_lookups_hold_a_bounded_number_of_threads(server):
    server.route("/a", Reply(200, b"fine"))
    hosts = {f"h{i}.test": [PUBLIC] for i in range(6)}
    dns = SlowDNS(slow=lambda host: host != "news.test")
    lookups = LookupThreads(size=2, linger=0.5)
    f = guarded(server, hosts, resolver=dns, lookups=lookups, total_timeout=0.8)
    try:
        urls = [f"http://{h}:{f.base.rsplit(':', 1)[1]}/a" for h in hosts for _ in range(3)]
        with ThreadPoolExecutor(len(urls)) as pool:
            errors = list(pool.map(lambda u: timed_fetch(f, u), urls))
        assert all(e.reason == "timeout" and took < 0.8 + 1.5 for e, took in errors)
        assert lookups.threads <= 2
        # one lookup per name at a time: the other pages of a hanging host wait for it
        assert len(dns.calls) <= 2 and len(set(dns.calls)) == len(dns.calls)
        # the pool is stuck on two hanging names: other names time out, they do not queue for ever
        err, took = timed_fetch(f, f.base + "/a")
        assert err.reason == "timeout" and took < 0.8 + 1.5
    finally:
        dns.release.set()
    # once the resolver answers again, so do the same threads
    assert f.fetch(f.base + "/a").body == b"fine"
    assert lookups.threads <= 2
    time.sleep(1.5)  # idle threads end
    assert lookups.threads == 0


def test_a_page_waiting_for_robots_txt_behind_a_hanging_resolver_fails_within_its_budget(server):
    server.route("/robots.txt", Reply(200, b"User-agent: *\nDisallow:\n"))
    server.route("/a", Reply(200, b"fine"))
    dns = SlowDNS()
    f = guarded(server, resolver=dns, lookups=LookupThreads(size=2), total_timeout=1, retries=2)
    robots = RobotsCache(f)
    try:
        err, took = timed_fetch(f, f.base + "/a", allow=robots.check)
    finally:
        dns.release.set()
    assert err.reason == "robots_unavailable" and "timeout" in str(err) and took < 1 + 1.5
    assert server.hits == []
