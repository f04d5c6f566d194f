"""Article extraction: trafilatura plus an Arabic-aware cleanup, dates and language.

The page is parsed once into an lxml tree; trafilatura, the language attribute and the
visible-date search all read that one tree.
"""
from __future__ import annotations

import copy
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
from akhbar.transforms.dates import (choose_published, date_from_url, parse_arabic_date, parse_feed_date,
                                     parse_hijri_date)
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

# A line that opens an in-body block of links to other stories; the block is dropped.
_READ_ALSO = re.compile(
    r"^\s*(?:[•\-–*]\s*)?(?:[اإأآ]قرأ\s+(?:[اأ]يض[اًا]+|المزيد)|مقالات\s+(?:مشابهة|ذات\s+صلة)|مواضيع\s+ذات\s+صلة|"
    r"[اأ]خبار\s+ذات\s+صلة|ذات\s+صلة|[اأ]خبار\s+متعلقة|المزيد\s+من\s+[اأ]خبار|شاهد\s+[اأ]يض[اًا]+|"
    r"[اأ]قر[اأ]\s+[اأ]يض[اًا]+)\s*[:：.]?\s*$"
)
# Whole lines that are page furniture, not article text.
_FURNITURE = re.compile(
    r"^\s*(?:مشاركة\s+عبر\s*:?.*|شارك(?:\s+هذا\s+المقال)?\s*:?.{0,40}|تابعونا\s+على.{0,60}|"
    r"اشترك\s+في\s+النشرة.{0,80}|الرجاء\s+الانتظار\.*|يرجى\s+الانتظار\.*|الوسوم\s*:.{0,120}|"
    r"جميع\s+الحقوق\s+محفوظة.{0,120}|لا\s+توجد\s+تعليقات.{0,60}|Main Logo|Article Image)\s*$"
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
    lines that follows it (the linked titles); the text after that run is kept, except when
    the marker comes after a credit line ("المصدر: …", "(أ ف ب)"): the article has ended
    there, and what follows is another story, so the rest is dropped. Share, follow,
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
        if skipping:
            if _headline_like(line) or line.startswith(("•", "-", "–")):
                continue
            skipping = False
        if _FURNITURE.match(line):
            continue
        if credit_line(line) is not None:
            credited = True
        prose_seen = prose_seen or _is_prose(line)
        out.append(line)
    # a dateline ("19 فبراير 2018 - 14:03 بتوقيت غرينتش") opening or closing the text
    edges = {0, 1, len(out) - 1} if len(out) > 2 else set()
    return "\n".join(line for i, line in enumerate(out) if i not in edges or not _is_dateline(line))


def _is_prose(line: str) -> bool:
    return len(line.split()) > 12 or bool(_SENTENCE_END.search(line)) and len(line.split()) > 4


def _is_dateline(line: str) -> bool:
    return len(line.split()) <= 10 and not _SENTENCE_END.search(line) and parse_arabic_date(line) is not None


_META_DATE_KEYS = (
    "article:published_time", "og:article:published_time", "datepublished", "pubdate", "publishdate",
    "publish-date", "publish_date", "dc.date.issued", "dc.date", "dcterms.created", "sailthru.date",
    "parsely-pub-date", "date",
)


def _json_ld_dates(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["datePublished"]] if isinstance(node.get("datePublished"), str) else []
        for v in node.values():
            if isinstance(v, (dict, list)):
                found += _json_ld_dates(v)
        return found
    if isinstance(node, list):
        return [d for item in node for d in _json_ld_dates(item)]
    return []


def metadata_date(tree) -> datetime | None:
    """Publication time declared by the page: meta tags, JSON-LD, then ``<time datetime>``.

    Read directly, with the time of day, rather than trafilatura's day-precision date.
    """
    metas = {}
    for m in tree.iter("meta"):
        key = (m.get("property") or m.get("name") or m.get("itemprop") or "").strip().lower()
        if key in _META_DATE_KEYS and m.get("content") and key not in metas:
            metas[key] = m.get("content")
    for key in _META_DATE_KEYS:
        if key in metas and (dt := parse_feed_date(metas[key])):
            return dt
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json" and script.text:
            try:
                data = json.loads(script.text)
            except ValueError:
                continue
            for value in _json_ld_dates(data):
                if dt := parse_feed_date(value):
                    return dt
    for t in tree.iter("time"):
        if t.get("datetime") and (dt := parse_feed_date(t.get("datetime"))):
            return dt
    return None


def _declared_date_strings(tree) -> list[str]:
    out = [m.get("content") for m in tree.iter("meta")
           if (m.get("property") or m.get("name") or m.get("itemprop") or "").strip().lower() in _META_DATE_KEYS
           and m.get("content")]
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() == "application/ld+json" and script.text:
            try:
                out += _json_ld_dates(json.loads(script.text))
            except ValueError:
                continue
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
            continue
        if dt.tzinfo is not None and dt.utcoffset() and dt == instant:
            return dt
    return instant


def _headline(tree, title: str) -> str:
    """``title``, unless it is the short (site-name) side of a "Site - Headline" ``<title>``:
    then the headline side."""
    t = tree.find(".//title")
    if not title or t is None or not t.text:
        return title
    parts = [p.strip() for p in re.split(r"\s+[-–—|]\s+", t.text.strip()) if p.strip()]
    norm = tokens(title)
    if len(parts) == 2 and norm in (tokens(parts[0]), tokens(parts[1])):
        other = parts[1] if tokens(parts[0]) == norm else parts[0]
        if len(norm) <= 3 and len(other.split()) >= 2 * len(norm):
            return other
    return title


def site_names(tree, title: str | None = None) -> set[str]:
    """Names the page gives its site (``og:site_name``, ``application-name``, the part of
    ``<title>`` beside the headline), in token form."""
    names = set()
    for m in tree.iter("meta"):
        key = (m.get("property") or m.get("name") or "").strip().lower()
        if key in ("og:site_name", "application-name", "twitter:site") and m.get("content"):
            names.add(" ".join(tokens(m.get("content"))))
    t = tree.find(".//title")
    if t is not None and t.text and title:
        parts = re.split(r"\s+[-–—|]\s+", t.text.strip())
        norm_title = " ".join(tokens(title))
        if len(parts) > 1 and any(" ".join(tokens(p)) == norm_title for p in parts):
            names |= {" ".join(tokens(p)) for p in parts if " ".join(tokens(p)) != norm_title and len(p.split()) <= 5}
    names.discard("")
    return names


def _visible_text(tree) -> str:
    body = tree.find(".//body")
    node = body if body is not None else tree
    return " ".join(node.itertext())[:20000]


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
    title = _headline(tree, ((meta.title if meta is not None else None) or feed_title or "").strip())
    names = site_names(tree, title) | _leading_site_names([ln.strip() for ln in raw.split("\n") if ln.strip()])
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

    visible: list[str] = []  # the page's visible text, read only if a date is still missing by then

    def visible_text() -> str:
        if not visible:
            visible.append(_visible_text(tree))
        return visible[0]

    # in priority order; the costly ones are functions, called only when every earlier one failed
    published, published_source = choose_published(
        [("feed", feed_published), ("metadata", lambda: metadata_date(tree)), ("url", lambda: date_from_url(url)),
         ("metadata", meta_date), ("visible_text", lambda: parse_arabic_date(visible_text())),
         ("hijri", lambda: parse_hijri_date(visible_text()))],
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
