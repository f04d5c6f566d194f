import itertools
import threading
import time

import pytest

from akhbar.schemas.records import Candidate
from akhbar.transforms import steps
from akhbar.transforms.http import FetchConfig, FetchError, Fetcher
from akhbar.transforms.netguard import HostGuard
from akhbar.transforms.robots import RobotsCache, robots_lines
from akhbar.transforms.urls import article_id
from tests.servers import RawServer, Reply, drip


def cache():
    return RobotsCache(Fetcher(FetchConfig(retries=0, host_interval=0), HostGuard(allow_private=True)))


def test_disallow_allow_and_agent_specific_rules(server):
    server.route("/robots.txt", Reply(200, b"User-agent: *\nDisallow: /private/\n\nUser-agent: akhbar\nDisallow: /no-akhbar/\n"
                                           b"Crawl-delay: 2\n"))
    rc = cache()
    rc.check(server.url("/news/1.html"))
    rc.check(server.url("/private/x.html"))  # the akhbar group replaces the * group
    with pytest.raises(FetchError) as e:
        rc.check(server.url("/no-akhbar/1.html"))
    assert e.value.reason == "robots_disallowed" and not e.value.transient
    assert server.count("/robots.txt") == 1
    assert rc.fetcher.limiter._interval[server.base_url.split("//")[1]] == 2.0  # crawl-delay obeyed


@pytest.mark.parametrize("reply, allowed", [(Reply(404, b""), True), (Reply(403, b""), True),
                                            (Reply(500, b""), False), (Reply(429, b""), False)])
def test_missing_robots_allows_unreachable_robots_refuses(server, reply, allowed):
    server.route("/robots.txt", reply)
    rc = cache()
    if allowed:
        rc.check(server.url("/a"))
    else:
        with pytest.raises(FetchError) as e:
            rc.check(server.url("/a"))
        assert e.value.reason == "robots_unavailable" and e.value.transient


def test_a_huge_robots_txt_is_parsed_up_to_its_first_512_kib(server):
    rules = b"User-agent: akhbar\nDisallow: /private/\n"
    server.route("/robots.txt", Reply(200, rules + b"# padding padding padding\n" * 500_000))  # ~13 MB
    rc = RobotsCache(Fetcher(FetchConfig(retries=0, host_interval=0, max_bytes=8 * 1024 * 1024),
                             HostGuard(allow_private=True)))
    rc.check(server.url("/news/1.html"))
    with pytest.raises(FetchError) as e:
        rc.check(server.url("/private/1.html"))
    assert e.value.reason == "robots_disallowed"


def test_robots_lines_drop_the_cut_last_line():
    assert robots_lines(b"Disallow: /a\nDisallow: /b", truncated=True) == ["Disallow: /a"]
    assert robots_lines(b"Disallow: /a\nDisallow: /b", truncated=False) == ["Disallow: /a", "Disallow: /b"]


def test_a_dripped_robots_txt_gives_up_within_the_total_timeout():
    stop = threading.Event()
    with RawServer(drip(b"HTTP/1.1 200 OK\r\n", itertools.repeat(b"X-Drip: a\r\n"), 0.25, stop)) as srv:
        rc = RobotsCache(Fetcher(FetchConfig(retries=2, host_interval=0, total_timeout=2, read_timeout=1),
                                 HostGuard(allow_private=True)))
        t0 = time.monotonic()
        with pytest.raises(FetchError) as e:
            rc.check(srv.url("/a"))
        took = time.monotonic() - t0
        stop.set()
    assert e.value.reason == "robots_unavailable" and took < 2 + 3


def test_a_redirect_into_a_disallowed_path_is_refused(server):
    server.route("/robots.txt", Reply(200, b"User-agent: akhbar\nDisallow: /private/\n"))
    server.route("/go", Reply(302, b"", {"Location": "/private/x.html"}))
    server.route("/private/x.html", Reply(200, b"secret"))
    rc = cache()
    with pytest.raises(FetchError) as e:
        rc.fetcher.fetch(server.url("/go"), allow=rc.check)
    assert e.value.reason == "robots_disallowed" and server.count("/private/x.html") == 0


def test_a_redirect_to_another_sites_disallowed_page_is_refused(server):
    from tests.servers import RouteServer

    with RouteServer() as other:
        other.route("/robots.txt", Reply(200, b"User-agent: akhbar\nDisallow: /page/\n"))
        other.route("/page/1.html", Reply(200, b"<p>x</p>", {"Content-Type": "text/html"}))
        server.route("/go", Reply(302, b"", {"Location": other.url("/page/1.html")}))
        fn = steps.FetchPages(FetchConfig(retries=0, host_interval=0), allow_private=True)
        fn.setup()
        url = server.url("/go")
        out = list(fn.fetch_one(Candidate(source_id="s", feed_url="http://f", link=url, url=url,
                                          article_id=article_id(url))))
        assert [o.value.reason for o in out] == ["robots_disallowed"]
        assert other.count("/page/1.html") == 0 and other.count("/robots.txt") == 1


def test_the_robots_txt_fetch_is_charged_to_the_pages_total_timeout(server):
    """robots.txt takes 1.5 s and the page 1 s: with --total-timeout 2 the page's fetch gives up
    (before, the robots.txt time came on top and the page took 2.5 s)."""
    server.route("/robots.txt", Reply(200, b"User-agent: *\nAllow: /\n", delay=1.5))
    server.route("/news/1.html", Reply(200, b"<p>x</p>", {"Content-Type": "text/html"}, delay=1.0))
    rc = RobotsCache(Fetcher(FetchConfig(retries=0, host_interval=0, total_timeout=2), HostGuard(allow_private=True)))
    t0 = time.monotonic()
    with pytest.raises(FetchError) as e:
        rc.fetcher.fetch(server.url("/news/1.html"), allow=rc.check)
    assert e.value.reason == "timeout" and time.monotonic() - t0 < 2.4
    rc.fetcher.fetch(server.url("/news/1.html"), allow=rc.check)  # robots.txt is cached now: 1 s is within 2
