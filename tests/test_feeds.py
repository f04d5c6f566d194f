from datetime import datetime, timezone

import pytest

from akhbar.transforms.feeds import FeedError, parse_feed
from akhbar.transforms.http import FetchConfig, Fetcher
from akhbar.transforms.netguard import HostGuard
from akhbar.transforms.urls import canonical_url
from tests.servers import Reply

RSS2 = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>أخبار</title>
<link>https://ex.com/</link>
<item><title>الناتو يجتمع</title><link>https://ex.com/a/1?utm_source=rss#top</link>
<pubDate>Tue, 28 Aug 2018 19:45:11 GMT</pubDate><description>ملخص</description></item>
<item><title>نسخة مكررة</title><link>https://ex.com/a/1</link></item>
<item><title>بلا رابط</title></item>
<item><title>نسبي</title><link>/a/2</link></item>
<item><title>سيئ</title><link>javascript:void(0)</link></item>
</channel></rss>"""

RSS1 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://ex.com/"><title>المدينة</title><link>https://ex.com/</link><description>x</description>
<items><rdf:Seq><rdf:li resource="https://ex.com/b/1"/></rdf:Seq></items></channel>
<item rdf:about="https://ex.com/b/1"><title>كييف</title><link>https://ex.com/b/1</link><dc:date>2022-11-29T08:00:00Z</dc:date></item>
</rdf:RDF>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>وادي</title>
<id>urn:x</id><updated>2023-09-28T12:10:00Z</updated>
<entry><title>زيلينسكي</title><id>urn:1</id><link rel="alternate" href="https://ex.com/c/1"/>
<published>2023-09-28T12:10:00+03:00</published><updated>2023-09-28T12:10:00Z</updated><summary>s</summary></entry>
</feed>"""


def test_rss2_entries_problems_and_one_candidate_per_url():
    f = parse_feed(RSS2.encode(), "application/rss+xml", "https://ex.com/feed.xml", "ex")
    assert f.version == "rss20"
    assert [c.url for c in f.candidates] == ["https://ex.com/a/1", "https://ex.com/a/2"]
    c = f.candidates[0]
    assert c.source_id == "ex" and c.feed_title == "الناتو يجتمع" and c.feed_summary == "ملخص"
    assert c.feed_published == datetime(2018, 8, 28, 19, 45, 11, tzinfo=timezone.utc)
    assert c.link == "https://ex.com/a/1?utm_source=rss#top"
    assert sorted(p.reason for p in f.problems) == ["bad_url", "entry_without_link"]


def test_rss1_and_atom():
    f1 = parse_feed(RSS1.encode(), "application/rdf+xml", "https://ex.com/rdf", "m")
    assert f1.version == "rss10" and f1.candidates[0].feed_published == datetime(2022, 11, 29, 8, tzinfo=timezone.utc)
    f2 = parse_feed(ATOM.encode(), None, "https://ex.com/atom", "w")
    assert f2.version == "atom10" and f2.candidates[0].url == "https://ex.com/c/1"
    assert f2.candidates[0].feed_published == datetime(2023, 9, 28, 9, 10, tzinfo=timezone.utc)


def test_undeclared_windows_1256_feed_is_not_mojibake():
    body = RSS2.replace(' encoding="utf-8"', "").encode("cp1256")
    f = parse_feed(body, "text/xml", "https://ex.com/feed.xml", "ex")
    assert f.candidates[0].feed_title == "الناتو يجتمع"


def test_declared_windows_1256_feed():
    body = RSS2.replace('encoding="utf-8"', 'encoding="windows-1256"').encode("cp1256")
    assert parse_feed(body, "application/xml", "https://ex.com/f", "ex").candidates[0].feed_title == "الناتو يجتمع"


def test_max_entries():
    assert len(parse_feed(RSS2.encode(), None, "https://ex.com/f", "ex", max_entries=1).candidates) == 1


@pytest.mark.parametrize("body", [b"<html><body>not a feed</body></html>", b"", b"\x00\x01garbage"])
def test_not_a_feed(body):
    with pytest.raises(FeedError) as e:
        parse_feed(body, "text/html", "https://ex.com/f", "ex")
    assert e.value.reason == "feed_parse_error"


@pytest.mark.parametrize("content_type, body", [
    ("application/rss+xml; charset=iso-8859-1", RSS2.replace('encoding="utf-8"', 'encoding="iso-8859-1"').encode("cp1256")),
    ("application/xml; charset=utf-8", RSS2.replace(' encoding="utf-8"', "").encode("cp1256")),  # header lies
    ("text/xml", RSS2.replace('encoding="utf-8"', 'encoding="iso-8859-6"').encode("iso-8859-6", errors="ignore")),
    ("text/xml", b"\xef\xbb\xbf" + RSS2.encode()),
])
def test_feed_encodings_declared_wrongly_or_not_at_all(content_type, body):
    f = parse_feed(body * 1, content_type, "https://ex.com/f", "ex")
    assert f.candidates[0].feed_title == "الناتو يجتمع"


BILLION_LAUGHS = """<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>x</title><link>https://ex.com/1</link></item></channel></rss>"""

XXE = """<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title><link>https://ex.com/1</link></item></channel></rss>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, XXE.replace("<!ENTITY", "<!entity")])
def test_hostile_xml_is_refused(body):
    with pytest.raises(FeedError) as e:
        parse_feed(body.encode(), "application/xml", "https://ex.com/f", "ex")
    assert e.value.reason == "hostile_xml"


def test_feedparser_alone_would_not_read_local_files_either():
    # defence in depth: even without our refusal, the parser must not expand external entities
    import feedparser

    parsed = feedparser.parse(XXE.encode())
    assert "root:" not in str(parsed)


def test_bare_ampersands_are_escaped_outside_cdata_only():
    from akhbar.transforms.feeds import _escape_bare_ampersands

    xml = (b'<rss><channel><item><link>http://e.com/a?x=1&y=2&amp;z=3&#38;w&#x26;v</link>'
           b'<description><![CDATA[<p>R&D &nbsp; & co</p>]]></description><title>A &lt; B & C</title>'
           b'</item></channel></rss>')
    out = _escape_bare_ampersands(xml)
    assert b"?x=1&amp;y=2&amp;z=3&#38;w&#x26;v" in out  # bare ones escaped, references kept
    assert b"<![CDATA[<p>R&D &nbsp; & co</p>]]>" in out  # CDATA is literal: untouched
    assert b"A &lt; B &amp; C" in out


def test_a_feed_with_bare_ampersands_parses_strictly_to_the_same_entries():
    import feedparser
    from akhbar.transforms.feeds import _escape_bare_ampersands

    items = "".join(
        f"<item><title>خبر {i} &amp; تحليل</title><link>http://e.com/news/{i}.html?utm_source=rss&utm_medium=feed</link>"
        f"<pubDate>Tue, 24 Nov 2026 10:0{i}:00 GMT</pubDate><description><![CDATA[<p>نص & {i}</p>]]></description></item>"
        for i in range(5))
    feed = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    body = feed.encode("utf-8")
    kw = dict(sanitize_html=False, resolve_relative_uris=False)
    lenient, strict = feedparser.parse(body, **kw), feedparser.parse(_escape_bare_ampersands(body), **kw)
    assert lenient.bozo and not strict.bozo  # the escape spares feedparser its second, lenient parse
    assert [dict(e) for e in strict.entries] == [dict(e) for e in lenient.entries]
    parsed = parse_feed(body, "application/rss+xml", "http://e.com/rss", "s")
    assert [c.link for c in parsed.candidates] == [e.link for e in lenient.entries]
    assert all("&utm_medium=feed" in c.link for c in parsed.candidates)


def rss(items: str, decl: str = 'encoding="utf-8"') -> str:
    return f'<?xml version="1.0" {decl}?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


def test_one_malformed_link_costs_one_entry_not_the_feed():
    items = "".join(f"<item><title>t{i}</title><link>https://ex.com/n/{i}</link></item>" for i in range(3))
    items += "<item><title>bad</title><link>http://[::1/x</link></item><item><title>port</title><link>http://ex.com:99999/x</link></item>"
    f = parse_feed(rss(items).encode(), "application/rss+xml", "https://ex.com/f", "ex")
    assert [c.url for c in f.candidates] == [f"https://ex.com/n/{i}" for i in range(3)]
    assert [(p.link, p.reason) for p in f.problems] == [("http://[::1/x", "bad_url"), ("http://ex.com:99999/x", "bad_url")]


def test_max_entries_keeps_the_newest_entries_of_an_oldest_first_feed():
    items = "".join(f"<item><title>t{d}</title><link>https://ex.com/n/{d}</link>"
                    f"<pubDate>Tue, {d:02d} Nov 2026 10:00:00 GMT</pubDate></item>" for d in range(1, 7))
    f = parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex", max_entries=3)
    assert [c.url for c in f.candidates] == ["https://ex.com/n/4", "https://ex.com/n/5", "https://ex.com/n/6"]
    assert f.over_limit == 3


def test_max_entries_ranks_undated_entries_after_dated_ones():
    items = ("<item><title>u</title><link>https://ex.com/u</link></item>"
             "<item><title>old</title><link>https://ex.com/old</link><pubDate>Tue, 01 Nov 2026 10:00:00 GMT</pubDate></item>"
             "<item><title>new</title><link>https://ex.com/new</link><pubDate>Tue, 03 Nov 2026 10:00:00 GMT</pubDate></item>")
    f = parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex", max_entries=2)
    assert [c.url for c in f.candidates] == ["https://ex.com/old", "https://ex.com/new"]  # in feed order


def test_a_stray_byte_in_a_utf8_feed_keeps_titles_and_arabic_links_right():
    items = ("<item><title>الناتو يجتمع</title><link>https://ex.com/أخبار/مقال</link></item>"
             "<item><title>كييف \udcff</title><link>https://ex.com/n/2</link></item>")
    body = rss(items).encode("utf-8", "surrogateescape")
    for ctype in ("application/rss+xml; charset=utf-8", "application/rss+xml"):
        f = parse_feed(body, ctype, "https://ex.com/f", "ex")
        assert f.encoding == "utf-8" and f.candidates[0].feed_title == "الناتو يجتمع"
        assert f.candidates[0].url == canonical_url("https://ex.com/أخبار/مقال")


@pytest.mark.parametrize("body", [
    ('<?xml version="1.0"?><!--' + "x" * 70_000 + '-->' + XXE.split("?>", 1)[1]).encode(),  # past the first 64 KiB
    XXE.encode("utf-16"),  # BOM
    XXE.replace('<?xml version="1.0"?>', "").encode("utf-16-le"),  # no BOM
])
def test_entity_declarations_are_found_wherever_the_prolog_ends(body):
    with pytest.raises(FeedError) as e:
        parse_feed(body, "application/xml", "https://ex.com/f", "ex")
    assert e.value.reason == "hostile_xml"


def test_the_word_entity_in_an_item_is_not_hostile():
    items = "<item><title>XML: &lt;!ENTITY&gt;</title><description><![CDATA[<!ENTITY x>]]></description><link>https://ex.com/1</link></item>"
    assert len(parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex").candidates) == 1


def test_max_entries_counts_only_entries_not_handled_yet():
    items = "".join(f"<item><title>t{d}</title><link>https://ex.com/n/{d}</link>"
                    f"<pubDate>Tue, {d:02d} Nov 2026 10:00:00 GMT</pubDate></item>" for d in range(1, 7))
    stored = {parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex").candidates[i].article_id for i in (3, 4, 5)}
    f = parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex", max_entries=2, handled=stored)
    assert [c.url for c in f.candidates] == ["https://ex.com/n/2", "https://ex.com/n/3"]
    assert (f.over_limit, f.handled) == (1, 3)
    # under the limit, or without one, the stored entries are left to the later SkipStored step
    assert len(parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex", handled=stored).candidates) == 6
    assert len(parse_feed(rss(items).encode(), None, "https://ex.com/f", "ex", max_entries=6, handled=stored).candidates) == 6


@pytest.mark.parametrize("written, expected", [
    ("Tue, 28 Aug 2018 19:45:11 +0300", "2018-08-28T16:45:11+00:00"),  # feedparser's reading, kept
    ("Tue, 28 Aug 2018 19:45:11 AST", "2018-08-28T16:45:11+00:00"),  # feedparser: Atlantic time, 23:45
    ("Tue, 28 Aug 2018 19:45:11 EET", "2018-08-28T17:45:11+00:00"),  # feedparser: UTC
    ("Tue, 28 Aug 2018 19:45:11 GMT+3", "2018-08-28T16:45:11+00:00"),  # feedparser: no date
    ("Tue, 28 Aug 2018 19:45:11 UTC+03:00", "2018-08-28T16:45:11+00:00"),  # feedparser: UTC
    ("الثلاثاء 28 أغسطس 2018 - 19:45", "2018-08-28T19:45:00+00:00"),  # feedparser: no date
    ("28/08/2018 19:45", "2018-08-28T19:45:00+00:00"),  # feedparser: no date
    ("not a date", None),
])
def test_entry_dates_feedparser_misreads_or_cannot_read(written, expected):
    f = parse_feed(rss(f"<item><title>t</title><link>https://ex.com/a</link><pubDate>{written}</pubDate></item>").encode(),
                   None, "https://ex.com/f", "ex")
    got = f.candidates[0].feed_published
    assert (got.isoformat() if got else None) == expected


NEWS_FEED = """<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>أخبار الجنوب</title>
<link>https://ex.com/</link>
<item><title>روسيا تواصل هجماتها على مدن الجنوب</title><link>https://ex.com/1</link></item>
<item><title>الأمين العام: الدول الأعضاء ستعلن التزاماتها الجديدة خلال الأسبوع</title><link>https://ex.com/2</link></item>
<item><title>الجيش صد عدة محاولات هجوم جديدة</title><link>https://ex.com/3</link></item>
</channel></rss>"""


@pytest.mark.parametrize("codec, declared", [("iso8859_6", "windows-1256"), ("cp1256", "iso-8859-6")])
def test_a_feed_in_one_arabic_code_page_declared_as_the_other(server, codec, declared):
    body = NEWS_FEED.format(encoding=declared).encode(codec)
    url = server.route("/feed.xml", Reply(200, body, {"Content-Type": "application/rss+xml"}))
    resp = Fetcher(FetchConfig(retries=0, host_interval=0), HostGuard(allow_private=True)).fetch(url)
    f = parse_feed(resp.body, resp.content_type, url, "ex")
    assert f.encoding == codec.replace("_", "-")
    assert [c.feed_title for c in f.candidates] == ["روسيا تواصل هجماتها على مدن الجنوب",
                                                    "الأمين العام: الدول الأعضاء ستعلن التزاماتها الجديدة خلال الأسبوع",
                                                    "الجيش صد عدة محاولات هجوم جديدة"]


def test_entries_without_a_link_are_named_apart_however_little_they_say():
    def keys(items: str) -> list[str]:
        return [p.entry_key for p in parse_feed(rss(items).encode(), "application/rss+xml", "https://ex.com/f",
                                                "s").problems]

    bare = ["<item><description/><pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate></item>",
            "<item><pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate><category>a</category></item>",
            "<item><pubDate>Tue, 01 Dec 2026 10:00:00 GMT</pubDate><category>b</category></item>"]
    reused = ["<item><guid isPermaLink='false'>1</guid><title>خبر عاجل</title></item>",
              "<item><guid isPermaLink='false'>1</guid><title>خبر آخر</title></item>"]
    found = keys("".join(bare + reused))
    assert len(found) == 5 and len(set(found)) == 5
    assert keys("".join(bare + reused)) == found  # the same entries, the same names at the next poll
    assert keys(bare[1]) == [found[1]]  # whatever else the feed lists
