"""An offline Arabic news site used for demos (``akhbar sample``) and tests.

The site is built entirely in memory from ``articles.jsonl``: three outlets,
each with its own feed format and article-page layout, plus a handful of
deliberately awkward resources (duplicates, a dead link, a PDF, a gallery
with no text, a failing feed).  :class:`SampleSite` serves it on 127.0.0.1.

Everything here is a pure function of ``base_url``, so the same base URL
always yields byte-identical resources.
"""

from __future__ import annotations

import html
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

import yaml

__all__ = [
    "Response",
    "SampleSite",
    "build_site",
    "expected",
    "load_records",
    "sources_yaml",
]


@dataclass(frozen=True)
class Response:
    """One resource of the sample site."""

    status: int
    content_type: str | None  # exact Content-Type value; None = send no header
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # additional headers


# ---------------------------------------------------------------------------
# Static description of the outlets
# ---------------------------------------------------------------------------

OUTLETS: dict[str, dict[str, str]] = {
    "sahil": {"name": "الساحل نيوز", "country": "LB", "format": "rss20"},
    "wadi": {"name": "وادي الأخبار", "country": "AE", "format": "atom10"},
    "madina": {"name": "المدينة اليوم", "country": "SY", "format": "rss10"},
    "qarya": {"name": "القرية", "country": "TN", "format": "broken"},
}

FEED_CONTENT_TYPES = {
    "rss20": "application/rss+xml; charset=utf-8",
    "atom10": "application/atom+xml; charset=utf-8",
    "rss10": "application/rdf+xml; charset=utf-8",
}

SECTION_LABELS = {
    "world": "دولي",
    "economy": "اقتصاد",
    "sport": "رياضة",
    "culture": "ثقافة",
    "politics": "سياسة",
}

NAV_ITEMS = ["الرئيسية", "سياسة", "اقتصاد", "رياضة", "ثقافة", "منوعات", "فيديو"]

# Month names as used in Egypt (transliterated) and in the Levant (Syriac).
MONTHS_EG = [
    "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو",
    "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر",
]
MONTHS_LEVANT = [
    "كانون الثاني", "شباط", "آذار", "نيسان", "أيار", "حزيران",
    "تموز", "آب", "أيلول", "تشرين الأول", "تشرين الثاني", "كانون الأول",
]
# Indexed by datetime.weekday(): Monday == 0.
WEEKDAYS = ["الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد"]

# The one madina page that carries no charset declaration at all.
UNDECLARED_PAGE_ID = "ant-AL-economy-917-20180629"

# Special resources (paths are relative to base_url).
DUPLICATE_OF = "seed-000"
DUPLICATE_PATH = "/madina/2023/06/seed-000-copy.html"
DUPLICATE_TITLE = "الناتو: دعم الحلفاء لأوكرانيا يحدث فرقا"
TRACKED_ID = "seed-003"
TRACKING_SUFFIX = "?utm_source=rss&utm_medium=feed#comments"
REMOVED_PATH = "/sahil/2024/01/removed-story.html"
PDF_PATH = "/wadi/files/report.pdf"
GALLERY_PATH = "/madina/2024/02/photo-gallery.html"
BROKEN_FEED_PATH = "/qarya/news.xml"
NEAR_DUPLICATE_IDS = (
    "ant-AL-internationalNews-103-20180219",
    "ant-SK-internationalNews-39-20180219",
)

PDF_BYTES = (
    b"%PDF-1.4\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n"
    b"%%EOF\n"
)

GALLERY_CAPTIONS = [
    "سوق المدينة القديم",
    "غروب الشمس",
    "ساحة البلدية",
    "مهرجان الربيع",
    "أطفال يلعبون",
    "الميناء صباحا",
]


def _esc(text: str) -> str:
    """Escape text for HTML/XML element content or attribute values."""
    return html.escape(text, quote=True)


# ---------------------------------------------------------------------------
# Records and small helpers
# ---------------------------------------------------------------------------

def load_records() -> list[dict]:
    """Return the article records shipped in ``articles.jsonl``, in file order."""
    text = resources.files("akhbar.sample").joinpath("articles.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _published(record: dict) -> datetime:
    return datetime.fromisoformat(record["published"]).astimezone(timezone.utc)


def _paragraphs(record: dict) -> list[str]:
    return [p.strip() for p in record["body"].split("\n") if p.strip()]


def _summary(record: dict) -> str:
    return record.get("summary") or _paragraphs(record)[0]


def _page_path(record: dict) -> str:
    when = _published(record)
    return f"/{record['source']}/{when:%Y}/{when:%m}/{record['id']}.html"


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_eg(when: datetime) -> str:
    return f"{when.day} {MONTHS_EG[when.month - 1]} {when.year}"


def _date_levant(when: datetime) -> str:
    return f"{WEEKDAYS[when.weekday()]} {when.day} {MONTHS_LEVANT[when.month - 1]} {when.year}"


def _others(records: list[dict], record_id: str, count: int, salt: str) -> list[dict]:
    """Pick ``count`` other records, the same ones every time for a given id."""
    pool = [r for r in records if r["id"] != record_id]
    rng = random.Random(f"{salt}|{record_id}")
    return rng.sample(pool, count)


def _link_list(base: str, picks: list[dict], sep: str = "\n") -> str:
    return sep.join(
        f'<a href="{_esc(base + _page_path(r))}">{_esc(r["title"])}</a>' for r in picks
    )


# ---------------------------------------------------------------------------
# Article page layouts
# ---------------------------------------------------------------------------

def _page_sahil(base: str, record: dict, records: list[dict]) -> Response:
    name = OUTLETS["sahil"]["name"]
    when = _published(record)
    url = base + _page_path(record)
    section = SECTION_LABELS.get(record["section"], record["section"])
    picks = _others(records, record["id"], 7, "sahil")
    read_also, most_read = picks[:3], picks[3:]

    paras = [f"<p>{_esc(p)}</p>" for p in _paragraphs(record)]
    box = (
        '<div class="read-also"><strong>اقرأ أيضا:</strong>\n<ul>\n'
        + "\n".join(f"<li>{_link_list(base, [r])}</li>" for r in read_also)
        + "\n</ul></div>"
    )
    paras.insert(min(2, len(paras)), box)
    nav = "\n".join(f'<li><a href="{_esc(base)}/sahil/">{_esc(item)}</a></li>' for item in NAV_ITEMS)
    sidebar = "\n".join(f"<li>{_link_list(base, [r])}</li>" for r in most_read)

    page = f"""<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(record["title"])} | {_esc(name)}</title>
<link rel="canonical" href="{_esc(url)}">
<meta property="og:type" content="article">
<meta property="og:site_name" content="{_esc(name)}">
<meta property="og:title" content="{_esc(record["title"])}">
<meta property="og:url" content="{_esc(url)}">
<meta property="article:published_time" content="{_rfc3339(when)}">
<meta name="description" content="{_esc(_summary(record))}">
</head>
<body>
<header class="site-header">
<a class="logo" href="{_esc(base)}/sahil/">{_esc(name)}</a>
<nav class="main-menu"><ul>
{nav}
</ul></nav>
</header>
<div class="breadcrumb"><a href="{_esc(base)}/sahil/">الرئيسية</a> &rsaquo; <a href="{_esc(base)}/sahil/">{_esc(section)}</a></div>
<main class="container">
<article>
<h1>{_esc(record["title"])}</h1>
<div class="meta"><time datetime="{_rfc3339(when)}">{_esc(_date_eg(when))}</time></div>
{chr(10).join(paras)}
<div class="share">مشاركة عبر: <a href="#">فيسبوك</a> <a href="#">تويتر</a> <a href="#">واتساب</a></div>
<div class="tags">الوسوم: <a href="#">{_esc(section)}</a> <a href="#">أخبار</a></div>
</article>
<aside class="sidebar">
<h3>الأكثر قراءة</h3>
<ol>
{sidebar}
</ol>
<div class="newsletter">اشترك في النشرة البريدية لتصلك آخر الأخبار <input type="email" placeholder="بريدك الإلكتروني"> <button>اشترك</button></div>
</aside>
</main>
<footer>جميع الحقوق محفوظة © {when.year} {_esc(name)}</footer>
</body>
</html>
"""
    return Response(200, "text/html; charset=utf-8", page.encode("utf-8"))


def _page_wadi(base: str, record: dict, records: list[dict]) -> Response:
    name = OUTLETS["wadi"]["name"]
    when = _published(record)
    url = base + _page_path(record)
    similar = _others(records, record["id"], 4, "wadi")
    credit = record.get("credit")
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": record["title"],
        "datePublished": _rfc3339(when),
        "mainEntityOfPage": url,
        "author": {"@type": "Organization", "name": credit or "هيئة التحرير"},
        "publisher": {"@type": "Organization", "name": name},
    }
    ld_text = json.dumps(ld, ensure_ascii=False, indent=1).replace("</", "<\\/")
    body = "\n".join(f"<p>{_esc(p)}</p>" for p in _paragraphs(record))
    if credit:
        body += f'\n<p class="credit">{_esc(credit)}</p>'
    similar_items = "\n".join(f"<li>{_link_list(base, [r])}</li>" for r in similar)

    page = f"""<!doctype html>
<html lang="ar" dir="rtl">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{_esc(record["title"])} - {_esc(name)}</title>
<script type="application/ld+json">
{ld_text}
</script>
</head>
<body>
<div class="topbar">تابعونا على فيسبوك وتويتر وتيليغرام</div>
<div class="masthead"><a href="{_esc(base)}/wadi/">{_esc(name)}</a></div>
<div class="portal-menu"><a href="{_esc(base)}/wadi/">الرئيسية</a> · <a href="{_esc(base)}/wadi/">أخبار العالم</a> · <a href="{_esc(base)}/wadi/">اقتصاد</a></div>
<div class="story">
<h1 class="story-title">{_esc(record["title"])}</h1>
<span class="story-date">{_esc(_date_eg(when))} - {when:%H:%M} بتوقيت غرينتش</span>
<div class="story-body">
{body}
</div>
</div>
<div class="related">
<h3>مقالات مشابهة</h3>
<ul>
{similar_items}
</ul>
</div>
<section id="comments">
<h4>التعليقات</h4>
<p>لا توجد تعليقات بعد</p>
</section>
<div class="footer">{_esc(name)} © {when.year} - جميع الحقوق محفوظة</div>
</body>
</html>
"""
    return Response(200, "text/html; charset=utf-8", page.encode("utf-8"))


def _legacy_shell(base: str, title: str, inner: str, declare: bool, year: int) -> Response:
    """Wrap ``inner`` in madina's old table layout, encoded as windows-1256."""
    name = OUTLETS["madina"]["name"]
    meta = (
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1256">\n'
        if declare
        else ""
    )
    menu = " | ".join(f'<a href="{_esc(base)}/madina/">{_esc(item)}</a>' for item in NAV_ITEMS[:5])
    page = f"""<html dir="rtl">
<head>
{meta}<title>{_esc(title)}</title>
</head>
<body bgcolor="#FFFFFF" topmargin="0">
<table width="780" border="0" cellpadding="3" cellspacing="0" align="center">
<tr>
<td width="200" class="wait"><font size="1">الرجاء الانتظار...</font></td>
<td align="left"><font size="5" color="#003366"><b>{_esc(name)}</b></font></td>
</tr>
<tr><td colspan="2" bgcolor="#DDDDDD">{menu}</td></tr>
<tr><td colspan="2" valign="top">
{inner}
</td></tr>
<tr><td colspan="2" align="center"><font size="1">{_esc(name)} - جميع الحقوق محفوظة {year}</font></td></tr>
</table>
</body>
</html>
"""
    return Response(200, "text/html", page.encode("cp1256", errors="xmlcharrefreplace"))


def _page_madina(base: str, record: dict, records: list[dict], *, title: str | None = None,
                 when: datetime | None = None, declare: bool = True) -> Response:
    title = title or record["title"]
    when = when or _published(record)
    more = _others(records, record["id"], 3, "madina")
    text = "<br><br>".join(_esc(p) for p in _paragraphs(record))
    links = _link_list(base, more, "<br>\n")
    inner = f"""<font size="4"><b>{_esc(title)}</b></font><br>
<font size="2" color="#666666">{_esc(_date_levant(when))}</font><br><br>
<div id="content">{text}</div>
<br><b>إقرأ أيضاً:</b><br>
{links}"""
    return _legacy_shell(base, title, inner, declare, when.year)


def _page_gallery(base: str) -> Response:
    title = "بالصور: جولة في المدينة"
    cells = "\n".join(
        f'<td align="center"><img src="{_esc(base)}/madina/images/gallery-{i}.jpg" width="180"><br>'
        f"<small>{_esc(caption)}</small></td>"
        + ("</tr><tr>" if i == 3 else "")
        for i, caption in enumerate(GALLERY_CAPTIONS, start=1)
    )
    inner = f"""<font size="4"><b>{_esc(title)}</b></font><br><br>
<table width="100%"><tr>
{cells}
</tr></table>"""
    return _legacy_shell(base, title, inner, True, 2024)


# ---------------------------------------------------------------------------
# Feeds
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Item:
    title: str
    link: str
    when: datetime
    summary: str


def _feed_rss20(base: str, title: str, items: list[_Item]) -> bytes:
    entries = "\n".join(
        f"""<item>
<title>{_esc(it.title)}</title>
<link>{_esc(it.link)}</link>
<guid isPermaLink="true">{_esc(it.link)}</guid>
<pubDate>{format_datetime(it.when, usegmt=True)}</pubDate>
<description>{_esc(it.summary)}</description>
</item>"""
        for it in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
<channel>
<title>{_esc(title)}</title>
<link>{_esc(base)}/sahil/</link>
<description>{_esc(title)}</description>
<language>ar</language>
{entries}
</channel>
</rss>
""".encode("utf-8")


def _feed_atom10(base: str, title: str, self_url: str, items: list[_Item]) -> bytes:
    updated = max(it.when for it in items)
    entries = "\n".join(
        f"""<entry>
<title>{_esc(it.title)}</title>
<link rel="alternate" type="text/html" href="{_esc(it.link)}"/>
<id>{_esc(it.link)}</id>
<published>{_rfc3339(it.when)}</published>
<updated>{_rfc3339(it.when)}</updated>
<summary>{_esc(it.summary)}</summary>
</entry>"""
        for it in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="ar">
<title>{_esc(title)}</title>
<id>{_esc(self_url)}</id>
<link rel="self" href="{_esc(self_url)}"/>
<link rel="alternate" type="text/html" href="{_esc(base)}/wadi/"/>
<updated>{_rfc3339(updated)}</updated>
<author><name>{_esc(OUTLETS["wadi"]["name"])}</name></author>
{entries}
</feed>
""".encode("utf-8")


def _feed_rss10(base: str, title: str, self_url: str, items: list[_Item]) -> bytes:
    seq = "\n".join(f'<rdf:li rdf:resource="{_esc(it.link)}"/>' for it in items)
    entries = "\n".join(
        f"""<item rdf:about="{_esc(it.link)}">
<title>{_esc(it.title)}</title>
<link>{_esc(it.link)}</link>
<description>{_esc(it.summary)}</description>
<dc:date>{_rfc3339(it.when)}</dc:date>
</item>"""
        for it in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="{_esc(self_url)}">
<title>{_esc(title)}</title>
<link>{_esc(base)}/madina/</link>
<description>{_esc(title)}</description>
<dc:language>ar</dc:language>
<items><rdf:Seq>
{seq}
</rdf:Seq></items>
</channel>
{entries}
</rdf:RDF>
""".encode("utf-8")


def _extra_items(base: str, by_id: dict[str, dict]) -> dict[tuple[str, str], list[_Item]]:
    """Awkward feed entries appended to particular (source, section) feeds."""
    tracked = by_id[TRACKED_ID]
    original = by_id[DUPLICATE_OF]
    return {
        ("sahil", "world"): [
            _Item(tracked["title"], base + _page_path(tracked) + TRACKING_SUFFIX,
                  _published(tracked), _summary(tracked)),
            _Item("خبر تم حذفه من الموقع", base + REMOVED_PATH,
                  datetime(2024, 1, 10, 8, 0, tzinfo=timezone.utc),
                  "هذا الخبر لم يعد متاحا على الموقع."),
        ],
        ("wadi", "world"): [
            _Item("التقرير السنوي للأمن الإقليمي (PDF)", base + PDF_PATH,
                  datetime(2024, 3, 5, 7, 0, tzinfo=timezone.utc),
                  "النص الكامل للتقرير السنوي بصيغة PDF."),
        ],
        ("madina", "world"): [
            _Item(DUPLICATE_TITLE, base + DUPLICATE_PATH,
                  _published(original) + timedelta(hours=3), _summary(original)),
            _Item("بالصور: جولة في المدينة", base + GALLERY_PATH,
                  datetime(2024, 2, 12, 16, 0, tzinfo=timezone.utc),
                  "ألبوم صور من شوارع المدينة."),
        ],
    }


def _feed_paths(records: list[dict]) -> dict[str, list[str]]:
    """Feed paths per source (sorted), including the broken qarya feed."""
    out: dict[str, list[str]] = {}
    for source in OUTLETS:
        sections = sorted({r["section"] for r in records if r["source"] == source})
        out[source] = [f"/{source}/{s}.xml" for s in sections]
    out["qarya"] = [BROKEN_FEED_PATH]
    return out


# ---------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------

def _simple_html(title: str, inner: str) -> bytes:
    return (
        f'<!DOCTYPE html>\n<html lang="ar" dir="rtl"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title></head><body>\n<h1>{_esc(title)}</h1>\n{inner}\n"
        f"</body></html>\n"
    ).encode("utf-8")


def not_found_response() -> Response:
    return Response(404, "text/html; charset=utf-8",
                    _simple_html("404 - الصفحة غير موجودة", "<p>Not Found</p>"))


def build_site(base_url: str) -> dict[str, Response]:
    """Map every served path (e.g. ``/sahil/world.xml``) to its response."""
    base = base_url.rstrip("/")
    records = load_records()
    by_id = {r["id"]: r for r in records}
    site: dict[str, Response] = {}

    # Article pages.
    layouts = {"sahil": _page_sahil, "wadi": _page_wadi}
    for record in records:
        source = record["source"]
        if source == "madina":
            page = _page_madina(base, record, records, declare=record["id"] != UNDECLARED_PAGE_ID)
        else:
            page = layouts[source](base, record, records)
        site[_page_path(record)] = page

    # Special pages.
    original = by_id[DUPLICATE_OF]
    site[DUPLICATE_PATH] = _page_madina(
        base, original, records, title=DUPLICATE_TITLE,
        when=_published(original) + timedelta(hours=3),
    )
    site[GALLERY_PATH] = _page_gallery(base)
    site[PDF_PATH] = Response(200, "application/pdf", PDF_BYTES)
    site[BROKEN_FEED_PATH] = Response(
        500, "text/html; charset=utf-8",
        _simple_html("500 - خطأ في الخادم", "<p>Internal Server Error</p>"),
    )

    # Feeds.
    extras = _extra_items(base, by_id)
    feed_paths = _feed_paths(records)
    for source, outlet in OUTLETS.items():
        fmt = outlet["format"]
        if fmt == "broken":
            continue
        for path in feed_paths[source]:
            section = path.rsplit("/", 1)[1].removesuffix(".xml")
            chosen = sorted(
                (r for r in records if r["source"] == source and r["section"] == section),
                key=lambda r: (_published(r), r["id"]),
                reverse=True,
            )
            items = [
                _Item(r["title"], base + _page_path(r), _published(r), _summary(r)) for r in chosen
            ]
            items += extras.get((source, section), [])
            label = SECTION_LABELS.get(section, section)
            title = f"{outlet['name']} - {label}"
            self_url = base + path
            if fmt == "rss20":
                body = _feed_rss20(base, title, items)
            elif fmt == "atom10":
                body = _feed_atom10(base, title, self_url, items)
            else:
                body = _feed_rss10(base, title, self_url, items)
            site[path] = Response(200, FEED_CONTENT_TYPES[fmt], body)

    # Outlet home pages and a top-level index, for people browsing the demo.
    for source in ("sahil", "wadi", "madina"):
        links = "\n".join(
            f'<li><a href="{_esc(base + _page_path(r))}">{_esc(r["title"])}</a></li>'
            for r in records if r["source"] == source
        )
        feeds = "\n".join(
            f'<li><a href="{_esc(base + p)}">{_esc(p)}</a></li>' for p in feed_paths[source]
        )
        site[f"/{source}/"] = Response(
            200, "text/html; charset=utf-8",
            _simple_html(OUTLETS[source]["name"], f"<ul>\n{links}\n</ul>\n<h2>RSS</h2><ul>\n{feeds}\n</ul>"),
        )
    outlets = "\n".join(
        f'<li><a href="{_esc(base)}/{s}/">{_esc(o["name"])}</a></li>'
        for s, o in OUTLETS.items() if s != "qarya"
    )
    site["/"] = Response(200, "text/html; charset=utf-8",
                         _simple_html("أخبار تجريبية", f"<ul>\n{outlets}\n</ul>"))
    return site


def sources_yaml(base_url: str) -> str:
    """YAML text of a sources file describing every outlet of this site."""
    base = base_url.rstrip("/")
    feed_paths = _feed_paths(load_records())
    doc = {
        "sources": [
            {
                "id": source,
                "name": outlet["name"],
                "language": "ar",
                "country": outlet["country"],
                "feeds": sorted(base + p for p in feed_paths[source]),
            }
            for source, outlet in OUTLETS.items()
        ]
    }
    header = f"# Sources of the offline sample site at {base}\n"
    return header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def expected(base_url: str) -> dict:
    """What a correct pipeline run over this site should conclude."""
    base = base_url.rstrip("/")
    records = load_records()
    by_id = {r["id"]: r for r in records}
    first, second = (by_id[i] for i in NEAR_DUPLICATE_IDS)
    earlier, later = sorted((first, second), key=_published)
    return {
        "articles": {base + _page_path(r): r["id"] for r in records},
        "exact_duplicate_urls": [base + DUPLICATE_PATH],
        "near_duplicates": [(base + _page_path(later), base + _page_path(earlier))],
        "dead_letters": {
            base + REMOVED_PATH: "http_404",
            base + PDF_PATH: "unsupported_content_type",
            base + GALLERY_PATH: "empty_body",
            base + BROKEN_FEED_PATH: "http_500",
        },
    }


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

class SampleSite:
    """Serve :func:`build_site` on 127.0.0.1 from a daemon thread.

    Use as a context manager; ``base_url`` is available inside the block and
    ``requests`` records each request target (path plus any query string).
    """

    def __init__(self, port: int = 0):
        self.port = port
        self.base_url: str = ""
        self.requests: list[str] = []
        self.site: dict[str, Response] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "AkhbarSample/1.0"

            def log_message(self, format, *args):  # noqa: A002 - keep quiet
                pass

            def _reply(self, with_body: bool) -> None:
                with owner._lock:
                    owner.requests.append(self.path)
                path = urlsplit(self.path).path or "/"
                resp = owner.site.get(path) or not_found_response()
                self.send_response(resp.status)
                if resp.content_type is not None:
                    self.send_header("Content-Type", resp.content_type)
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(resp.body)

            def do_GET(self):  # noqa: N802
                self._reply(True)

            def do_HEAD(self):  # noqa: N802
                self._reply(False)

        return Handler

    def __enter__(self) -> "SampleSite":
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.site = build_site(self.base_url)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="akhbar-sample-site", daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
