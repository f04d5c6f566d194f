import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from akhbar.transforms.urls import BadURL, article_id, canonical_url


@pytest.mark.parametrize("raw, expected", [
    ("HTTP://Example.COM:80/a/b?utm_source=rss&b=2&a=1#frag", "http://example.com/a/b?a=1&b=2"),
    ("https://example.com:443/news/1?fbclid=xyz", "https://example.com/news/1"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com/s/?ref=home&id=7", "https://example.com/s/?id=7"),
])
def test_canonical_url_drops_tracking_fragment_and_default_port(raw, expected):
    assert canonical_url(raw) == expected


def test_arabic_path_raw_and_percent_encoded_are_one_url():
    raw = "https://example.com/أخبار/مقال-عن-الناتو"
    encoded = "https://example.com/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1/%D9%85%D9%82%D8%A7%D9%84-%D8%B9%D9%86-%D8%A7%D9%84%D9%86%D8%A7%D8%AA%D9%88"
    assert canonical_url(raw) == canonical_url(encoded) == canonical_url(encoded.lower().replace("https://example.com", "https://EXAMPLE.com"))


def test_relative_link_resolved_against_feed():
    assert canonical_url("/world/1.html", "https://ex.com/feeds/rss.xml") == "https://ex.com/world/1.html"


@pytest.mark.parametrize("bad", ["", "   ", "mailto:a@b.c", "javascript:alert(1)", "ftp://ex.com/x", "http:///nohost"])
def test_bad_links_raise(bad):
    with pytest.raises(BadURL):
        canonical_url(bad)


def test_article_id_is_stable_and_short():
    url = canonical_url("https://ex.com/a?utm_medium=x")
    assert article_id(url) == article_id("https://ex.com/a")
    assert article_id("https://ex.com/a") == hashlib.sha256(b"https://ex.com/a").hexdigest()[:32]
    assert len(article_id(url)) == 32 and int(article_id(url), 16) >= 0


paths = st.lists(st.text(alphabet=st.sampled_from("abcxyz019-_ابتثنوي%."), min_size=1, max_size=8), max_size=4)
queries = st.lists(st.tuples(st.sampled_from(["id", "p", "utm_source", "fbclid", "page", "q"]),
                             st.text(alphabet="abc123ب", max_size=4)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(host=st.sampled_from(["ex.com", "News.Example.ORG", "xn--mgbh0fb.example"]), path=paths, query=queries,
       frag=st.text(alphabet="abc", max_size=3), scheme=st.sampled_from(["http", "https", "HTTPS"]))
def test_canonical_url_is_idempotent(host, path, query, frag, scheme):
    q = "&".join(f"{k}={v}" for k, v in query)
    raw = f"{scheme}://{host}/{'/'.join(path)}" + (f"?{q}" if q else "") + (f"#{frag}" if frag else "")
    try:
        once = canonical_url(raw)
    except BadURL:
        return
    assert canonical_url(once) == once
    assert "#" not in once and "utm_source" not in once and "fbclid" not in once
