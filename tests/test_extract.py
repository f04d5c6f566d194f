from collections import Counter
from datetime import datetime, timezone

import pytest

from akhbar.sample.site import build_site, load_records
from akhbar.transforms.arabic import tokens
from akhbar.transforms.extract import ExtractError, clean_body, extract, metadata_date, prune_link_lists
from akhbar.transforms.http import decode_document

BASE = "http://127.0.0.1:1"
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
PARA = "قال الأمين العام لحلف شمال الأطلسي إن الحلف سيواصل دعم أوكرانيا طالما استغرق الأمر ذلك."


def test_clean_body_drops_read_also_block_share_and_header_lines_keeps_paragraphs():
    text = "\n".join([
        "الرجاء الانتظار...", "العنوان الكبير", PARA, "إقرأ أيضاً:", "الناتو يرفع جاهزيته!",
        "زيلينسكي يزور واشنطن", PARA.replace("قال", "وأضاف"), "مشاركة عبر:", "تابعونا على فيسبوك وتويتر",
    ])
    out = clean_body(text, title="العنوان الكبير").split("\n")
    assert out == [PARA, PARA.replace("قال", "وأضاف")]


def test_clean_body_keeps_a_short_quoted_paragraph_after_a_block():
    text = f"{PARA}\nمقالات مشابهة\nعنوان أول\nعنوان ثان\nوقال المتحدث: \"لن نتراجع عن دعمنا.\""
    assert clean_body(text).split("\n")[-1] == "وقال المتحدث: \"لن نتراجع عن دعمنا.\""


def test_clean_body_drops_layout_table_rows_and_datelines():
    text = f"| سوق المدينة | غروب الشمس |\n19 فبراير 2018 - 14:03 بتوقيت غرينتش\n{PARA}\n{PARA}\n{PARA}"
    assert clean_body(text) == "\n".join([PARA] * 3)


def test_prune_link_lists():
    from lxml import html

    tree = html.fromstring(f"<div><p>{PARA}</p><ul><li><a href='/1'>خبر</a></li><li><a href='/2'>آخر</a></li></ul>"
                           "<ul><li>بند نصي طويل فيه <a href='/x'>رابط</a></li><li>بند ثان</li></ul></div>")
    assert prune_link_lists(tree) == 1 and "خبر" not in tree.text_content() and "بند ثان" in tree.text_content()


@pytest.mark.parametrize("html, expected", [
    ('<html><head><meta property="article:published_time" content="2023-06-15T09:30:00+03:00"></head></html>',
     datetime(2023, 6, 15, 6, 30, tzinfo=timezone.utc)),
    ('<html><head><script type="application/ld+json">{"@graph":[{"@type":"NewsArticle","datePublished":"2024-12-03T10:45:00Z"}]}</script></head></html>',
     datetime(2024, 12, 3, 10, 45, tzinfo=timezone.utc)),
    ('<html><body><time datetime="2022-11-29T08:00:00Z">29</time></body></html>', datetime(2022, 11, 29, 8, tzinfo=timezone.utc)),
    ("<html><body><p>x</p></body></html>", None),
])
def test_metadata_date(html, expected):
    from lxml import html as lh

    assert metadata_date(lh.document_fromstring(html)) == expected


def _sample_pages():
    site = build_site(BASE)
    records = {r["id"]: r for r in load_records()}
    for path, resp in sorted(site.items()):
        rid = path.rsplit("/", 1)[-1].removesuffix(".html")
        if path.endswith(".html") and rid in records:
            yield path, resp, records[rid]


@pytest.mark.parametrize("path, resp, record", list(_sample_pages()), ids=lambda v: v if isinstance(v, str) else "")
def test_sample_pages_extract_clean_bodies_titles_and_dates(path, resp, record):
    html, enc = decode_document(resp.body, resp.content_type)
    ex = extract(html, BASE + path, now=NOW)
    # a leading dateline and credit lines live in their own columns now; together with the
    # body they must still give back the whole article text
    text = "\n".join(x for x in (ex.dateline, ex.body, *ex.credit) if x)
    ref, got = Counter(tokens(record["body"])), Counter(tokens(text))
    overlap = sum((ref & got).values())
    precision, recall = overlap / sum(got.values()), overlap / sum(ref.values())
    assert recall == 1.0 and precision >= 0.97, (precision, recall)
    for junk in ("اقرأ أيضا", "إقرأ أيضاً", "مقالات مشابهة", "مشاركة عبر", "الرجاء الانتظار", "جميع الحقوق محفوظة"):
        assert junk not in ex.body
    assert ex.title == record["title"]
    published = datetime.fromisoformat(record["published"])
    assert ex.published_at is not None and ex.published_at.date() == published.date()
    assert ex.language == "ar" and ex.declared_language in ("ar", None)


def test_page_with_no_article_is_an_empty_body_error():
    site = build_site(BASE)
    resp = site["/madina/2024/02/photo-gallery.html"]
    html, _ = decode_document(resp.body, resp.content_type)
    with pytest.raises(ExtractError) as e:
        extract(html, BASE + "/madina/2024/02/photo-gallery.html", now=NOW)
    assert e.value.reason == "empty_body"


def test_feed_date_wins_and_implausible_dates_are_rejected():
    html = f'<html><head><meta property="article:published_time" content="2031-01-01T00:00:00Z"></head><body><article>{"<p>" + PARA + "</p>" * 1}</article></body></html>'
    feed = datetime(2023, 1, 2, 3, 4, tzinfo=timezone.utc)
    assert extract(html, "https://ex.com/a", feed_published=feed, now=NOW, min_words=5).published_source == "feed"
    ex = extract(html, "https://ex.com/a", now=NOW, min_words=5)
    assert ex.published_at is None and ex.published_source is None


def test_unparsable_html():
    with pytest.raises(ExtractError) as e:
        extract("", "https://ex.com/a", now=NOW)
    assert e.value.reason in ("unparsable_html", "empty_body")
