"""Tests for the offline sample news site (akhbar.sample.site)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from urllib.parse import urlsplit

import feedparser
import pytest
import yaml

from akhbar.sample.site import (
    Response,
    SampleSite,
    build_site,
    expected,
    load_records,
    sources_yaml,
)

FEEDS = {
    "/sahil/world.xml": "rss20",
    "/sahil/sport.xml": "rss20",
    "/wadi/world.xml": "atom10",
    "/wadi/economy.xml": "atom10",
    "/madina/world.xml": "rss10",
    "/madina/economy.xml": "rss10",
    "/madina/culture.xml": "rss10",
}
FEED_TYPES = {
    "rss20": "application/rss+xml; charset=utf-8",
    "atom10": "application/atom+xml; charset=utf-8",
    "rss10": "application/rdf+xml; charset=utf-8",
}
# Entries added on top of the records in a feed: the special cases.
EXTRA_ENTRIES = {"/sahil/world.xml": 2, "/wadi/world.xml": 1, "/madina/world.xml": 2}


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def live():
    with SampleSite() as site:
        yield site


def test_records_shape():
    records = load_records()
    assert len(records) == 15
    assert len({r["id"] for r in records}) == 15
    assert {r["source"] for r in records} == {"sahil", "wadi", "madina"}


def test_every_resource_served_as_built(live):
    for path, resp in live.site.items():
        status, headers, body = fetch(live.base_url + path)
        assert status == resp.status, path
        assert headers.get("Content-Type") == resp.content_type, path
        assert int(headers["Content-Length"]) == len(resp.body) == len(body), path
        assert body == resp.body, path


def test_feeds_parse_with_expected_versions_and_counts(live):
    records = load_records()
    served_feeds = {p for p in live.site if p.endswith(".xml") and live.site[p].status == 200}
    assert served_feeds == set(FEEDS)
    for path, version in FEEDS.items():
        status, headers, body = fetch(live.base_url + path)
        assert status == 200
        assert headers["Content-Type"] == FEED_TYPES[version]
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert parsed.version == version, path
        source, section = path.strip("/").removesuffix(".xml").split("/")
        n = sum(1 for r in records if r["source"] == source and r["section"] == section)
        assert len(parsed.entries) == n + EXTRA_ENTRIES.get(path, 0), path
        for entry in parsed.entries:
            assert entry.title and entry.link.startswith(live.base_url)
            assert entry.get("published_parsed") or entry.get("updated_parsed"), entry.link
            assert entry.get("summary")


def test_feed_links_lead_where_expected(live):
    exp = expected(live.base_url)
    dead = exp["dead_letters"]
    links = []
    for path in FEEDS:
        links += [e.link for e in feedparser.parse(live.site[path].body).entries]
    # seed-003 appears twice in sahil's world feed, once with tracking params.
    canon = Counter(urlsplit(u)._replace(query="", fragment="").geturl() for u in links)
    assert [u for u, c in canon.items() if c > 1] == [
        u for u, i in exp["articles"].items() if i == "seed-003"
    ]
    assert any("utm_source=rss" in u for u in links)
    for link in links:
        status, headers, _ = fetch(link)
        canonical = link.split("?")[0].split("#")[0]
        if dead.get(canonical) == "http_404":
            assert status == 404
        elif dead.get(canonical) == "unsupported_content_type":
            assert status == 200 and headers["Content-Type"] == "application/pdf"
        else:
            assert status == 200 and headers["Content-Type"].startswith("text/html"), link


def test_madina_pages_are_windows_1256(live):
    by_id = {v: k for k, v in expected(live.base_url)["articles"].items()}
    status, headers, body = fetch(by_id["ant-AL-internationalNews-1424-20180602"])
    assert status == 200 and headers["Content-Type"] == "text/html"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("cp1256")
    assert 'charset=windows-1256' in text
    assert "الرجاء الانتظار..." in text and '<div id="content">' in text
    assert "إقرأ أيضاً:" in text

    # The one page with no declaration at all.
    status, headers, body = fetch(by_id["ant-AL-economy-917-20180629"])
    assert headers["Content-Type"] == "text/html"
    assert b"charset" not in body.lower()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert "الاتحاد الأوروبي" in body.decode("cp1256")

    declared = [
        p for p, r in live.site.items()
        if p.startswith("/madina/") and p.endswith(".html") and b"charset" not in r.body
    ]
    assert len(declared) == 1


def test_levantine_date_and_layout_markers(live):
    by_id = {v: k for k, v in expected(live.base_url)["articles"].items()}
    madina = live.site[urlsplit(by_id["seed-002"]).path].body.decode("cp1256")
    assert "الثلاثاء 29 تشرين الثاني 2022" in madina

    sahil = live.site[urlsplit(by_id["seed-000"]).path].body.decode("utf-8")
    assert '<html lang="ar" dir="rtl">' in sahil
    assert "15 يونيو 2023" in sahil and 'property="og:title"' in sahil
    assert sahil.count('<div class="read-also">') == 1
    assert sahil.index('<div class="read-also">') > sahil.index("<p>", sahil.index("<p>") + 1)
    assert "الأكثر قراءة" in sahil and "جميع الحقوق محفوظة ©" in sahil

    wadi = live.site[urlsplit(by_id["seed-001"]).path].body.decode("utf-8")
    start = wadi.index('<script type="application/ld+json">') + len('<script type="application/ld+json">')
    ld = json.loads(wadi[start:wadi.index("</script>", start)])
    assert ld["@type"] == "NewsArticle" and ld["headline"]
    assert "فرانس24/ أ ف ب" in wadi and "لا توجد تعليقات بعد" in wadi
    assert "<h3>مقالات مشابهة</h3>" in wadi


def test_special_resources(live):
    exp = expected(live.base_url)
    [dup] = exp["exact_duplicate_urls"]
    status, _, body = fetch(dup)
    assert status == 200
    assert dup not in exp["articles"]
    seed = next(r for r in load_records() if r["id"] == "seed-000")
    text = body.decode("cp1256")
    assert all(p.strip() in text for p in seed["body"].split("\n") if p.strip())
    assert "الناتو: دعم الحلفاء لأوكرانيا يحدث فرقا" in text

    kinds = {v: k for k, v in exp["dead_letters"].items()}
    status, headers, body = fetch(kinds["unsupported_content_type"])
    assert status == 200 and body.startswith(b"%PDF-1.4")
    status, _, body = fetch(kinds["empty_body"])
    assert status == 200 and body.decode("cp1256").count("<img ") == 6
    assert fetch(kinds["http_404"])[0] == 404
    assert fetch(kinds["http_500"])[0] == 500

    later, earlier = exp["near_duplicates"][0]
    assert exp["articles"][later] == "ant-SK-internationalNews-39-20180219"
    assert exp["articles"][earlier] == "ant-AL-internationalNews-103-20180219"


def test_expected_urls_are_served(live):
    exp = expected(live.base_url)
    assert len(exp["articles"]) == 15
    for url in list(exp["articles"]) + exp["exact_duplicate_urls"]:
        path = urlsplit(url).path
        assert live.site[path].status == 200, url
    for url in exp["dead_letters"]:
        assert url.startswith(live.base_url + "/")


def test_unknown_path_and_head(live):
    status, headers, body = fetch(live.base_url + "/nope/missing.html")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    assert b"<html" in body

    status, headers, body = fetch(live.base_url + "/sahil/world.xml", method="HEAD")
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) == len(live.site["/sahil/world.xml"].body)
    assert "/sahil/world.xml" in live.requests


def test_sources_yaml(live):
    doc = yaml.safe_load(sources_yaml(live.base_url))
    by_id = {s["id"]: s for s in doc["sources"]}
    assert set(by_id) == {"sahil", "wadi", "madina", "qarya"}
    assert {k: v["country"] for k, v in by_id.items()} == {
        "sahil": "LB", "wadi": "AE", "madina": "SY", "qarya": "TN",
    }
    assert by_id["sahil"]["name"] == "الساحل نيوز"
    feeds = []
    for source in doc["sources"]:
        assert source["language"] == "ar"
        assert source["feeds"] == sorted(source["feeds"])
        feeds += source["feeds"]
    assert sorted(feeds) == sorted(live.base_url + p for p in [*FEEDS, "/qarya/news.xml"])


def test_deterministic():
    base = "http://127.0.0.1:8765"
    one, two = build_site(base), build_site(base)
    assert one == two
    assert all(isinstance(r, Response) for r in one.values())
    assert sources_yaml(base) == sources_yaml(base)
    assert expected(base) == expected(base)
    other = build_site("http://127.0.0.1:9999")
    assert set(other) == set(one)
    assert other["/sahil/world.xml"].body != one["/sahil/world.xml"].body
