"""Article extraction: trafilatura plus an Arabic-aware cleanup, dates and language.

The page is parsed once into an lxml tree; trafilatura, the language attribute and the
visible-date search all read that one tree.
"""
from __future__ import annotations

import copy
import email.utils
import functools
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from html import unescape

import trafilatura
from htmldate import find_date
from lxml import html as lxml_html
from trafilatura.external import SANITIZED_XPATH
from trafilatura.metadata import examine_meta, extract_meta_json, extract_title, extract_url
from trafilatura.settings import Extractor
from trafilatura.utils import line_processing

from akhbar.transforms.arabic import tokens
from akhbar.transforms.credits import credit_line, split_credits
from akhbar.transforms.dates import (choose_published, date_from_url, iter_arabic_dates, parse_feed_date,
                                     parse_hijri_date, plausible, undated_words)
from akhbar.transforms.language import detect_language, normalize_lang_tag

MIN_BODY_WORDS = 25
# Bounded work per document. Extraction time grows with the number of elements (about 0.1 ms
# each, measured on flat, tabular and paragraph-only pages); real article pages have a few
# hundred to a few thousand (largest seen: 2,533). Above these limits a page is refused
# unparsed by trafilatura as ``too_complex``; at the limit, extraction takes about 3 s.
MAX_ELEMENTS = 30_000
MAX_HTML_CHARS = 4_000_000
# Checked between the steps of an extraction (parse, trafilatura, cleanup, dates): a page
# that still runs over it is ``extract_timeout``. A running step cannot be interrupted from
# inside the process, so the element limit above is what bounds the time; this catches the
# rest and keeps a slow page from being written.
TIME_LIMIT_S = 10.0

# The words that open an in-body block of links to other stories ("اقرأ أيضا", "طالع أيضا", "قد يهمك").
_READ_ALSO_WORDS = (
    r"(?:[اإأآ]قر[اأ]\s+(?:[اأ]يض[اًا]+|كذلك|المزيد)|طالع\s+(?:[اأ]يض[اًا]+|كذلك)|شاهد\s+(?:[اأ]يض[اًا]+|كذلك)|"
    r"قد\s+يهمك|مقالات\s+(?:مشابهة|ذات\s+صلة)|مواضيع\s+ذات\s+صلة|[اأ]خبار\s+ذات\s+صلة|ذات\s+صلة|"
    r"[اأ]خبار\s+متعلقة|المزيد\s+من\s+[اأ]خبار)"
)
# A line that is such a marker alone: the block of linked headlines after it is dropped.
_READ_ALSO = re.compile(rf"^\s*(?:[•\-–*]\s*)?{_READ_ALSO_WORDS}\s*(?:[:：.]|\.\.\.|…)?\s*$")
# The marker and one linked headline on the same line ("اقرأ أيضا: روسيا تهدد …"): the line is dropped.
_READ_ALSO_INLINE = re.compile(rf"^\s*(?:[•\-–*]\s*)?{_READ_ALSO_WORDS}\s*(?:[:：]|\.\.\.|…|[-–])\s*(?P<rest>\S.*)$")
# Continuing prose opens with "و" and a verb of reporting or a particle ("وأضاف", "وقال", "وفي"),
# or a discourse marker ("كما", "من جهته"); a linked headline hardly ever does.
_PROSE_OPENING = re.compile(
    r"^(?:و(?:قال|قالت|[أا]ضاف|[أا]ضافت|[أا]كد|[أا]كدت|[أا]شار|[أا]شارت|تابع|تابعت|[أا]وضح|[أا]وضحت|بحسب|وفق[اًا]*|"
    r"ذكر|ذكرت|[أا]علن|[أا]علنت|لفت|لفتت|يأتي|تأتي|كان|كانت|في|من|قد|لم|[أاإ]ن|هو|هي)\s|"
    r"كما\s|من\s+جهت|من\s+جانب|في\s+المقابل|بدور)"
)
# Whole lines that are page furniture, not article text.
_FURNITURE = re.compile(
    r"^\s*(?:مشاركة\s+عبر\s*:?.*|شارك(?:\s+(?:هذا\s+)?(?:المقال|الخبر|الموضوع))?(?:\s*:.{0,40}|\s+(?:على|عبر)\s.{0,40})?|"
    r"تابعونا\s+على.{0,60}|"
    r"اشترك\s+في\s+النشرة.{0,80}|الرجاء\s+الانتظار\.*|يرجى\s+الانتظار\.*|الوسوم\s*:.{0,120}|"
    r"جميع\s+الحقوق\s+محفوظة.{0,120}|لا\s+توجد\s+تعليقات.{0,60}|Main Logo|Article Image|"
    r"ترحب\s+شبكة\s+CNN\s+بالنقاش.{0,400}|الآراء\s+الواردة\s+[أا]دناه.{0,400})\s*$"
)
_SENTENCE_END = re.compile(r"[.!؟?۔…»\"”]\s*$")
# An XML declaration opening an XHTML page. The page is text by now (decoded with the charset
# the fetch step chose), so its encoding="…" says nothing more, and lxml refuses to parse text
# that carries one.
_XML_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml\s[^>]*\?>")
# Characters an XML tree cannot hold: C0 controls other than tab, newline and carriage return,
# U+FFFE/U+FFFF and lone surrogates. trafilatura builds its output as XML, and one of these
# anywhere in the text lost the whole page (0 words). A page that gives no text and has one is
# extracted again without them (vertical tab and form feed become spaces, the rest go); they
# are not looked for up front, since scanning a 180 KB page costs 1.5 ms.
_XML_INCOMPATIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_compatible(html: str) -> str:
    return _XML_INCOMPATIBLE.sub(lambda m: " " if m.group() in "\x0b\x0c" else "", html)


class ExtractError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Extracted:
    title: str
    body: str
    published_at: datetime | None
    published_source: str | None
    language: str
    declared_language: str | None
    credit: tuple[str, ...] = ()
    dateline: str | None = None
    # published_at in the UTC offset the page wrote it with (same instant), for reading the
    # publication day as the site's readers saw it; equal to published_at when no offset was given
    published_local: datetime | None = None


def _headline_like(line: str) -> bool:
    """Short and not closed by a full stop: a linked title ("!" and "؟" end headlines too)."""
    return len(line) <= 160 and not line.rstrip().rstrip("\"'”»)]").endswith((".", "۔", "…", ":"))


def _text_len(el) -> int:
    return len("".join(el.itertext()).strip())


def prune_link_lists(tree) -> int:
    """Remove lists whose every item is a link (related-stories lists); return how many.

    A list of two or more items, each of which is (almost) all link text, lists other
    stories; prose lists with a link in them are kept.
    """
    removed = 0
    for lst in list(tree.iter("ul", "ol")):
        items = [li for li in lst if getattr(li, "tag", None) == "li"]
        if len(items) < 2:
            continue
        if all((n := _text_len(li)) and sum(_text_len(a) for a in li.iter("a")) >= 0.8 * n for li in items):
            if lst.getparent() is not None:
                lst.drop_tree()  # removes the element, keeps the text that follows it
                removed += 1
    return removed


def _table_row(line: str) -> str | None:
    """A layout-table row as trafilatura renders it ("| a | b |"): its text if any cell is
    prose, ``None`` if every cell is furniture or a short caption (layout, not content)."""
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    keep = [c for c in cells if c and not _FURNITURE.match(c) and len(c.split()) > 4]
    return " ".join(keep) if keep else None


_DASH_PREFIX = re.compile(r"^(.{1,60}?)\s+[-–—]\s+")


def _leading_site_names(lines: list[str]) -> set[str]:
    """Short header lines that come back as the dash-ended prefix of a line just below them
    ("اخبار هنا العالم" … "أخبار هنا العالم - روته يتوقع …"): the site's name, in token form."""
    names = set()
    head = lines[:8]
    # the dash-ended prefix of each line, in token form (None: the line has none)
    prefixes = [tokens(m.group(1)) if (m := _DASH_PREFIX.match(line)) else None for line in head]
    for i, line in enumerate(head):
        if _SENTENCE_END.search(line):
            continue
        toks = tokens(line)
        if 1 <= len(toks) <= 4 and toks in prefixes[i + 1:]:
            names.add(" ".join(toks))
    return names


def clean_body(text: str, title: str | None = None, site_names: set[str] | None = None) -> str:
    """Remove in-body boilerplate from extracted text, keeping every real paragraph.

    A "read also" / "related articles" marker line is dropped with the run of headline-like
    lines that follows it (the linked titles; a line opening like continuing prose, "وأضاف …",
    ends the run); the text after that run is kept, except when the marker comes right after
    a closing credit line ("المصدر: …", "(أ ف ب)"): the article has ended there, and what
    follows is another story, so the rest is dropped. A marker with its one headline on the
    same line ("اقرأ أيضا: …") is dropped alone. Share, follow,
    newsletter and "please wait" lines are dropped wherever they stand. Before the first
    paragraph of prose, lines repeating the headline or the site's name are dropped too.
    Rows of layout tables keep only their prose cells.
    """
    lines = [ln.strip() for ln in text.split("\n")]
    names = set(site_names or ()) | _leading_site_names([ln for ln in lines if ln])
    out: list[str] = []
    skipping = False
    credited = False
    prose_seen = False
    norm_title = " ".join(tokens(title)) if title else None
    for line in lines:
        if line.startswith("|") and line.endswith("|"):
            line = _table_row(line) or ""
        if not line:
            continue
        if not prose_seen:
            norm = " ".join(tokens(line))
            if norm and (norm == norm_title or norm in names):
                continue
        if _READ_ALSO.match(line):
            if credited:
                break
            skipping = True
            continue
        if (m := _READ_ALSO_INLINE.match(line)) and _headline_like(m.group("rest")):
            continue
        if skipping:
            if (_headline_like(line) and not _PROSE_OPENING.match(line)) or line.startswith(("•", "-", "–")):
                continue
            skipping = False
        if _FURNITURE.match(line):
            continue
        credited = _closing_credit(line)
        prose_seen = prose_seen or _is_prose(line)
        out.append(line)
    # a dateline ("19 فبراير 2018 - 14:03 بتوقيت غرينتش") opening or closing the text
    edges = {0, 1, len(out) - 1} if len(out) > 2 else set()
    return "\n".join(line for i, line in enumerate(out) if i not in edges or not _is_dateline(line))


def _closing_credit(line: str) -> bool:
    """A credit that closes an article: labelled ("المصدر: …") or in brackets ("(أ ف ب)"). A bare
    name on its own line ("رويترز" under a photo, "الشرق الأوسط" as a subhead) is not taken as
    the end of the article."""
    s = line.strip()
    return credit_line(s) is not None and (s[:1] in "([" or "مصدر" in s)


def _is_prose(line: str) -> bool:
    return len(line.split()) > 12 or bool(_SENTENCE_END.search(line)) and len(line.split()) > 4


def _is_dateline(line: str) -> bool:
    """A date stamp: a date with at most a label, weekday, clock or zone around it, and at most
    two other words (a place); not a sentence that happens to hold a date."""
    if len(line.split()) > 12 or _SENTENCE_END.search(line):
        return False
    rest = undated_words(line)
    return rest is not None and len(rest) <= 2


_META_DATE_KEYS = (
    "article:published_time", "og:article:published_time", "datepublished", "pubdate", "publishdate",
    "publish-date", "publish_date", "dc.date.issued", "dc.date", "dcterms.created", "sailthru.date",
    "parsely-pub-date", "date",
)


def _is_article_type(node: dict) -> bool:
    kinds = node.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return any(isinstance(k, str) and (k.endswith("Article") or k.endswith("Posting")) for k in kinds)


def _json_ld_dates(data) -> list[str]:
    """The ``datePublished`` strings of a JSON-LD document: those of article nodes (``NewsArticle``,
    ``BlogPosting`` …) first, then any other (a ``WebPage``, the items of an ``ItemList`` of other
    stories), each group in document order. Walked with a stack: nesting depth is the page's
    to choose."""
    first: list[str] = []
    rest: list[str] = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("datePublished"), str):
                (first if _is_article_type(node) else rest).append(node["datePublished"])
            stack.extend(v for v in reversed(list(node.values())) if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in reversed(node) if isinstance(v, (dict, list)))
    return first + rest


def _json_ld_documents(tree):
    """Each parsable ``application/ld+json`` script of the page, decoded (bad or absurdly deep
    JSON is skipped)."""
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json" and script.text:
            try:
                yield json.loads(script.text)
            except (ValueError, RecursionError):
                continue


# Where a <time> stands, best first: marked as the publication time, beside the headline, in the
# article, elsewhere in the page; in a sidebar, menu or footer outside the article it dates
# other stories (a ticker, "most read") and is not used.
_ASIDE_TAGS = frozenset({"aside", "nav", "footer"})
_SIDEBAR_RANK = 4


def _time_rank(el, near: set) -> int:
    if (el.get("itemprop") or "").strip().lower() == "datepublished" or el.get("pubdate") is not None:
        return 0
    ancestors = list(el.iterancestors())
    if near and any(a in near for a in ancestors[:4]):
        return 1
    tags = {a.tag for a in ancestors if isinstance(a.tag, str)}
    if tags & {"article", "main"}:
        return 2
    return _SIDEBAR_RANK if tags & _ASIDE_TAGS else 3


def metadata_date(tree, headline=None) -> datetime | None:
    """Publication time declared by the page: meta tags, JSON-LD, then ``<time datetime>``.

    Read directly, with the time of day, rather than trafilatura's day-precision date. Of
    several ``<time>`` elements, the one marked as the publication time wins, then one beside
    ``headline`` (the headline's element, when known), then one in the article; the times of a
    sidebar, menu or footer outside the article are not read.
    """
    metas = {}
    for m in tree.iter("meta"):
        key = (m.get("property") or m.get("name") or m.get("itemprop") or "").strip().lower()
        if key in _META_DATE_KEYS and m.get("content") and key not in metas:
            metas[key] = m.get("content")
    for key in _META_DATE_KEYS:
        if key in metas and (dt := parse_feed_date(metas[key])):
            return dt
    for data in _json_ld_documents(tree):
        for value in _json_ld_dates(data):
            if dt := parse_feed_date(value):
                return dt
    near = {a for a in list(headline.iterancestors())[:3] if a.tag not in ("body", "html")} if headline is not None else set()
    times = [t for t in tree.iter("time") if t.get("datetime")]
    ranked = sorted((_time_rank(t, near), i, t) for i, t in enumerate(times))
    for rank, _, t in ranked:
        if rank < _SIDEBAR_RANK and (dt := parse_feed_date(t.get("datetime"))):
            return dt
    return None


def _declared_date_strings(tree) -> list[str]:
    out = [m.get("content") for m in tree.iter("meta")
           if (m.get("property") or m.get("name") or m.get("itemprop") or "").strip().lower() in _META_DATE_KEYS
           and m.get("content")]
    for data in _json_ld_documents(tree):
        out += _json_ld_dates(data)
    return out + [t.get("datetime") for t in tree.iter("time") if t.get("datetime")]


def local_time(tree, instant: datetime | None) -> datetime | None:
    """``instant`` in the UTC offset the page declares it with, if any declaration of the same
    instant carries a non-zero offset ("2020-12-25T01:59:50+02:00" beside
    "2020-12-24T23:59:50+00:00"); otherwise ``instant`` itself."""
    if instant is None:
        return None
    for value in _declared_date_strings(tree):
        try:
            dt = datetime.fromisoformat(value.strip())
        except (ValueError, AttributeError):
            try:  # RFC 822 ("Wed, 03 Jan 2024 01:15:00 +0300"), as some meta tags have it
                dt = email.utils.parsedate_to_datetime(value.strip())
            except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
                continue
        if dt.tzinfo is not None and dt.utcoffset() and dt == instant:
            return dt
    return instant


_TITLE_PARTS = re.compile(r"\s+[-–—|]\s+|\s*\|\s*")


def _joined(text: str) -> str:
    return " ".join(tokens(text))


def declared_site_names(tree) -> set[str]:
    """The names the page's metadata gives its site (``og:site_name``, ``application-name``,
    ``twitter:site``), in token form."""
    names = set()
    for m in tree.iter("meta"):
        key = (m.get("property") or m.get("name") or "").strip().lower()
        if key in ("og:site_name", "application-name", "twitter:site") and m.get("content"):
            names.add(_joined(m.get("content")))
    names.discard("")
    return names


def _without_site_name(title: str, names: set[str]) -> str:
    """``title`` without a part at either end that is one of the site's ``names``
    ("Headline - اليوم السابع", "سكاي نيوز عربية | Headline")."""
    parts = [p for p in _TITLE_PARTS.split(title) if p.strip()]
    kept = list(parts)
    while len(kept) > 1 and _joined(kept[-1]) in names:
        kept.pop()
    while len(kept) > 1 and _joined(kept[0]) in names:
        kept.pop(0)
    if len(kept) == len(parts):
        return title
    return title[title.find(kept[0]):title.rfind(kept[-1]) + len(kept[-1])].strip()


def choose_title(tree, title: str | None, feed_title: str | None = None, declared: set[str] | None = None) -> str:
    """The article's headline, from the title the page's metadata gives (``title``), the feed's
    and the page's own ``<h1>``/``<title>``.

    - A title that is the site's name (an ``og:title`` of "الجزيرة نت") gives way to the feed's
      title, else to the page's first ``<h1>``.
    - The site's name is cut from either end ("Headline - اليوم السابع"): the names the metadata
      declares, else the part beside an ``<h1>`` that holds the rest of the title.
    - A title of three words or fewer that no ``<h1>`` repeats, on a page whose ``<h1>`` is a
      headline of four words or more, is a name too: the feed's title, else that ``<h1>``, is used.
    - A title of three words or fewer that is the short side of a "Site - Headline" ``<title>``
      gives way to the other side, unless an ``<h1>`` says it is the headline ("كورونا").

    ``declared``: the page's :func:`declared_site_names`, if the caller has read them already.
    """
    names = declared_site_names(tree) if declared is None else declared
    title = (title or feed_title or "").strip()
    h1s = [el for el in tree.iter("h1") if _joined(el.text_content())]
    if title and _joined(title) in names:
        fallback = feed_title if feed_title and _joined(feed_title) not in names else None
        if fallback is None and h1s and _joined(h1s[0].text_content()) not in names:
            fallback = " ".join(h1s[0].text_content().split())
        title = (fallback or title).strip()
    title = _without_site_name(title, names)
    head = headline_element(tree, title)
    if head is not None:
        got = tokens(head.text_content())
        parts = [p for p in _TITLE_PARTS.split(title) if p.strip()]
        ends = [tokens(" ".join(parts[:k])) for k in range(1, len(parts))]
        ends += [tokens(" ".join(parts[k:])) for k in range(1, len(parts))]
        if got != tokens(title) and got in ends:
            return " ".join(head.text_content().split())  # "Headline - Site", the headline in an <h1>
        return title
    if len(tokens(title)) <= 3 and h1s and len(tokens(h1s[0].text_content())) >= 4:
        # a few words no <h1> repeats, beside an <h1> headline: the site's or a section's name
        if feed_title and len(tokens(feed_title)) > len(tokens(title)):
            return feed_title.strip()
        return " ".join(h1s[0].text_content().split())
    t = tree.find(".//title")
    if not title or t is None or not t.text:
        return title
    parts = [p.strip() for p in _TITLE_PARTS.split(t.text.strip()) if p.strip()]
    norm = tokens(title)
    if len(parts) == 2 and norm in (tokens(parts[0]), tokens(parts[1])):
        other = parts[1] if tokens(parts[0]) == norm else parts[0]
        if len(norm) <= 3 and len(other.split()) >= 2 * len(norm) and _joined(other) not in names:
            return other
    return title


def site_names(tree, title: str | None = None, declared: set[str] | None = None) -> set[str]:
    """Names the page gives its site (``og:site_name``, ``application-name``, the part of
    ``<title>`` beside the headline), in token form; ``declared`` as in :func:`choose_title`."""
    names = set(declared_site_names(tree) if declared is None else declared)
    t = tree.find(".//title")
    if t is not None and t.text and title:
        parts = _TITLE_PARTS.split(t.text.strip())
        norm_title = _joined(title)
        if len(parts) > 1 and any(_joined(p) == norm_title for p in parts):
            names |= {_joined(p) for p in parts if _joined(p) != norm_title and len(p.split()) <= 5}
    names.discard("")
    return names


# Elements whose text no reader sees.
_INVISIBLE = frozenset({"script", "style", "noscript", "template", "svg", "head", "title", "iframe", "object"})


def _visible_chunks(root, mark=None) -> tuple[list[str], int, int]:
    """The text nodes of ``root`` a reader sees, in page order (no scripts, styles or comments),
    and where in that list the text of ``mark`` starts and ends (``-1, -1`` without one).
    Walked with a stack: nesting depth is the page's to choose."""
    out: list[str] = []
    start = end = -1
    stack = [(root, False)]
    while stack:
        el, closing = stack.pop()
        if closing:
            if el is mark:
                end = len(out)
            if el is not root and el.tail:
                out.append(el.tail)
            continue
        stack.append((el, True))
        if el is mark:
            start = len(out)
        if isinstance(el.tag, str) and el.tag not in _INVISIBLE:  # comments and PIs: tail only
            if el.text:
                out.append(el.text)
            stack.extend((child, False) for child in reversed(el))
    return out, start, end


def headline_element(root, title: str | None):
    """The ``<h1>`` (else ``<h2>``) whose words are the title's, or that opens or ends it
    ("Headline - Site"), if the page has one."""
    want = tokens(title) if title else []
    if not want:
        return None
    for tag in ("h1", "h2"):
        for el in root.iter(tag):
            got = tokens(el.text_content())
            if got == want or len(got) >= 3 and got in (want[:len(got)], want[-len(got):]):
                return el
    return None


def _squeeze(chunks: list[str]) -> str:
    return " ".join(" ".join(chunks).split())


class PageDates:
    """The dates a page shows, looked for where the article's own date stands.

    ``near_headline``: in the page's visible text between the headline and the first words of
    the body (byline, dateline: "الخميس 2 مارس 2017 - 10:22"), else the date closest above the
    headline (a category-and-date line over it). ``anywhere``: the first date of the whole visible
    text. Scripts, styles and comments are never read: a cache-busting "2019-06-15" or a
    tracker's config is not a publication date. A date that is not plausible (after ``now``)
    yields to the next one.
    """

    AFTER_CHARS = 600  # a byline zone longer than this is not searched past it
    AFTER_UNKNOWN_CHARS = 200  # the zone's end unknown: as far as a byline reaches
    BEFORE_CHARS = 300
    WHOLE_CHARS = 20_000

    def __init__(self, tree, headline, body: str, now: datetime):
        root = tree.find(".//body")
        root = tree if root is None else root
        self.chunks, self.head_start, self.head_end = _visible_chunks(root, headline)
        self.body_start = " ".join(body.split("\n", 1)[0].split())[:30]
        self.now = now

    def _plausible(self, text: str):
        return (d for d in iter_arabic_dates(text) if plausible(d, now=self.now))

    def near_headline(self) -> datetime | None:
        if self.head_start < 0:
            return None
        after = _squeeze(self.chunks[self.head_end:self.head_end + 200])[:5000]
        i = after.find(self.body_start) if self.body_start else -1
        window = after[:min(i, self.AFTER_CHARS)] if i >= 0 else after[:self.AFTER_UNKNOWN_CHARS]
        if (found := next(self._plausible(window), None)) is not None:
            return found
        above = list(self._plausible(_squeeze(self.chunks[max(0, self.head_start - 200):self.head_start])
                                     [-self.BEFORE_CHARS:]))
        return above[-1] if above else None

    def text(self) -> str:
        return " ".join(self.chunks)[:self.WHOLE_CHARS]

    def anywhere(self) -> datetime | None:
        return next(self._plausible(self.text()), None)


class TrafilaturaMetadata:
    """The title and the date trafilatura's metadata pass gives (``with_metadata=True``), read
    the same way with its own functions but without the rest of that pass; the date (htmldate)
    only when asked for."""

    # no extensive search: it picks dates out of links to other stories
    DATE_PARAMS = {"extensive_search": False, "original_date": True}

    def __init__(self, tree, url: str | None):
        self.tree = tree
        found = examine_meta(tree)
        try:
            found = extract_meta_json(tree, found)
        except Exception:  # noqa: BLE001 - as trafilatura does: bad JSON-LD is no title
            pass
        self.title = _trimmed(found.title or extract_title(tree))
        self.url = found.url or extract_url(tree, url)

    def date(self) -> str | None:
        return _trimmed(find_date(self.tree, **self.DATE_PARAMS, url=self.url))


def _trimmed(value):
    """trafilatura's final clean-up of a metadata string (``Document.clean_and_trim``)."""
    if not isinstance(value, str):
        return value
    if len(value) > 10000:
        value = value[:9999] + "…"
    return line_processing(unescape(value))


def trafilatura_metadata(tree, url: str | None) -> TrafilaturaMetadata | None:
    try:
        return TrafilaturaMetadata(tree, url)
    except (TypeError, ValueError):  # what trafilatura's own pass would have failed on
        return None


# trafilatura's cascade: its own extractor, then (unless ``fast``) a comparison with readability
# and a justext rescue. That comparison can only change the result when the own extraction is
# empty or short, has no paragraph text or more tables than paragraphs, or still holds page
# furniture (trafilatura's SANITIZED_XPATH), and it may split a one-line result into lines. On
# news pages it rarely does: it cost 1.5 of 4.3 ms a page and changed nothing on 3,000 fixture
# pages and the 24 real pages of the evaluation set. So the fast pass runs first, and the full
# cascade only when that pass shows one of those signs (5 % of the fixture pages). What is left
# to chance: readability finding twice the text of a sound own extraction of 500 characters or
# more (trafilatura's own recall retry, which the fast pass keeps, covers the case where that
# extraction is a small part of the page).
SOUND_BODY_CHARS = 500  # below this the own extraction may be a fragment readability would beat


# trafilatura's options, built once: built per call from its config file they cost 0.3 ms a
# page (configparser lookups). Only the URL differs between pages; it goes into a copy, as
# trafilatura itself does when it changes an option for one call.
_OPTIONS = {
    fast: Extractor(output_format="python", fast=fast, precision=False, recall=False, comments=False,
                    tables=True, dedup=False, with_metadata=False)
    for fast in (False, True)
}


def _bare(tree, url: str | None, fast: bool):
    options = copy.copy(_OPTIONS[fast])
    options.url = url
    options.source = url and url.encode("utf-8", "replace").decode("utf-8")
    return trafilatura.bare_extraction(tree, options=options)


def sound_extraction(doc) -> bool:
    """True when trafilatura's own extraction leaves its fallback nothing to improve (see above)."""
    if doc is None or len(doc.text or "") < SOUND_BODY_CHARS or doc.body is None:
        return False
    # a whole story on one line: its lines may be set apart by markup that only the full
    # cascade keeps apart (a <span> per line, say), and lines matter downstream (credits, lead)
    if "\n" not in doc.text:
        return False
    body = doc.body
    if not body.xpath(".//p//text()") or len(body.findall(".//table")) > len(body.findall(".//p")):
        return False
    return not body.xpath(SANITIZED_XPATH)


def trafilatura_body(tree, url: str | None):
    """trafilatura's extraction of ``tree`` (a ``Document`` or ``None``): the fast pass when it
    is sound, else the full cascade with readability and justext."""
    doc = _bare(tree, url, fast=True)
    return doc if sound_extraction(doc) else _bare(tree, url, fast=False)


class _Deadline:
    def __init__(self, limit: float | None, url: str):
        self.limit, self.url = limit, url
        self.start = time.perf_counter()

    def remaining(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - (time.perf_counter() - self.start))

    def check(self, step: str) -> None:
        spent = time.perf_counter() - self.start
        if self.limit is not None and spent > self.limit:
            raise ExtractError("extract_timeout", f"extraction of {self.url} took {spent:.1f} s (> {self.limit} s) "
                                                  f"by the end of {step}")


def check_complexity(html: str, tree=None, *, max_elements: int = MAX_ELEMENTS,
                     max_chars: int = MAX_HTML_CHARS) -> None:
    """Raise ``too_complex`` for a page too big to extract in bounded time."""
    if max_chars is not None and len(html) > max_chars:
        raise ExtractError("too_complex", f"page has {len(html):,} characters (> {max_chars:,})")
    if tree is not None and max_elements is not None:
        n = 0
        for _ in tree.iter():
            n += 1
            if n > max_elements:
                raise ExtractError("too_complex", f"page has more than {max_elements:,} elements")


def extract(html: str, url: str, *, feed_title: str | None = None, feed_published: datetime | None = None,
            now: datetime | None = None, min_words: int = MIN_BODY_WORDS, max_elements: int | None = MAX_ELEMENTS,
            max_chars: int | None = MAX_HTML_CHARS, time_limit: float | None = TIME_LIMIT_S) -> Extracted:
    """Extract title, clean body, credits, dateline, publication date and language from a page.

    Raises :class:`ExtractError` with reason ``unparsable_html``, ``too_complex`` (more than
    ``max_elements`` elements or ``max_chars`` characters), ``extract_timeout`` (over
    ``time_limit`` seconds) or ``empty_body``.
    """
    now = now or datetime.now(timezone.utc)
    deadline = _Deadline(time_limit, url)
    check_complexity(html, max_chars=max_chars, max_elements=None)
    try:
        tree = lxml_html.document_fromstring(_XML_DECLARATION.sub("", html, count=1))
    except (ValueError, lxml_html.etree.ParserError) as e:
        raise ExtractError("unparsable_html", f"cannot parse HTML: {e}") from e
    check_complexity(html, tree, max_chars=None, max_elements=max_elements)
    declared = normalize_lang_tag(tree.get("lang") or tree.get("xml:lang"))
    # related-story lists are pruned from a copy: every other read of the page uses the whole tree
    work = copy.deepcopy(tree)
    prune_link_lists(work)
    # Body only: of trafilatura's metadata pass we use the title (read below, the same way) and
    # the date (read only if needed); its authors, categories, tags and licence cost more than
    # the rest of extraction besides trafilatura itself.
    doc = trafilatura_body(work, url)
    deadline.check("trafilatura")
    raw = (doc.text if doc is not None else "") or ""
    if not raw.strip() and _XML_INCOMPATIBLE.search(html):
        # the second try gets what is left of this one's time, not a fresh limit
        return extract(_xml_compatible(html), url, feed_title=feed_title, feed_published=feed_published, now=now,
                       min_words=min_words, max_elements=max_elements, max_chars=max_chars,
                       time_limit=deadline.remaining())
    meta = trafilatura_metadata(work, url) if doc is not None else None
    named = declared_site_names(tree)  # read once, for the title and the body's cleanup
    title = choose_title(tree, meta.title if meta is not None else None, feed_title, named)
    names = site_names(tree, title, named) | _leading_site_names([ln.strip() for ln in raw.split("\n") if ln.strip()])
    body, credit, dateline = split_credits(clean_body(raw, title, names), tuple(names))
    n_words = len(tokens(body, normalized=True))
    if n_words < min_words:
        raise ExtractError("empty_body", f"extracted {n_words} words (< {min_words}) from {url}")
    deadline.check("cleanup")

    def meta_date() -> datetime | None:
        found = meta.date() if meta is not None else None
        if not found:
            return None
        try:
            return datetime.fromisoformat(found).replace(tzinfo=timezone.utc)
        except ValueError:
            return None

    @functools.cache
    def headline():
        return headline_element(tree, title)

    @functools.cache
    def shown() -> PageDates:  # the page's visible text, read only if a date is still missing by then
        return PageDates(tree, headline(), body, now)

    # in priority order; the costly ones are functions, called only when every earlier one failed
    published, published_source = choose_published(
        [("feed", feed_published), ("metadata", lambda: metadata_date(tree, headline())),
         ("url", lambda: date_from_url(url)), ("visible_text", lambda: shown().near_headline()),
         ("metadata", meta_date), ("visible_text", lambda: shown().anywhere()),
         ("hijri", lambda: parse_hijri_date(shown().text()))],
        now=now,
    )
    language = detect_language(body, declared)
    deadline.check("dates and language")
    return Extracted(
        title=title,
        body=body,
        published_at=published,
        published_source=published_source,
        language=language,
        declared_language=declared,
        credit=credit,
        dateline=dateline,
        published_local=local_time(tree, published) if published_source == "metadata" else published,
    )
