import pytest

from akhbar.transforms.http import FetchConfig, FetchError, Fetcher
from akhbar.transforms.netguard import HostGuard
from akhbar.transforms.robots import RobotsCache
from tests.servers import Reply


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
