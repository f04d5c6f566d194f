"""Feed parsing: bytes in, candidates out (RSS 2.0, RSS 1.0/RDF and Atom through feedparser)."""
from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime, timezone

import feedparser

from akhbar.schemas.records import Candidate
from akhbar.transforms.dates import parse_feed_date, written_zone
from akhbar.transforms.http import decode_document
from akhbar.transforms.urls import article_id, canonical_url



@dataclass(frozen=True)
class FeedProblem:
    link: str | None
    reason: str
    message: str
    entry_key: str | None = None  # entry_without_link: which entry (see entry_key), to report it once


@dataclass(frozen=True)
class ParsedFeed:
    version: str
    title: str | None
    candidates: list[Candidate]
    problems: list[FeedProblem]
    encoding: str = "utf-8"
    over_limit: int = 0  # entries left out by max_entries (older ones), for a later poll
    handled: int = 0  # entries left out as already handled (see parse_feed's ``handled``)
    given_up: int = 0  # entries left out because their page keeps failing (parse_feed's ``given_up``)


class FeedError(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# What may come before the root element of an XML document: white space, the XML declaration
# and other processing instructions, comments, and the DOCTYPE (with its internal subset).
_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>", re.S | re.I)
_ROOT_START = re.compile(r"<[A-Za-z_:]")
_ENTITY_DECL = re.compile(r"<!ENTITY", re.I)


def declares_entities(text: str) -> bool:
    """Whether the decoded document declares XML entities.

    Declarations can only stand in the DOCTYPE, before the root element, however long what
    precedes it (a 70 KB comment) and in whatever encoding (UTF-16): the decoded prolog is
    searched, up to the root element. A prolog that cannot be read as one (an unclosed
    comment, an odd DOCTYPE) makes the whole text searched instead."""
    pos = 0
    while (m := _PROLOG_ITEM.match(text, pos)) and m.end() > pos:
        pos = m.end()
    if _ROOT_START.match(text, pos):
        return bool(_ENTITY_DECL.search(text, 0, pos))
    return bool(_ENTITY_DECL.search(text))


# The commonest flaw of real feeds: a bare "&" in a link ("?utm_source=rss&utm_medium=…"). It makes
# feedparser's XML parser give up at the first one and parse the whole feed again with its
# lenient SGML parser (0.48 instead of 0.32 ms an entry). Escaped first, outside CDATA sections
# (whose text is literal), the feed parses strictly, to the same entries.
_CDATA = re.compile(rb"(<!\[CDATA\[.*?\]\]>)", re.S)
_BARE_AMPERSAND = re.compile(rb"&(?!(?:#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9._-]*);)")


def _escape_bare_ampersands(xml: bytes) -> bytes:
    if b"&" not in xml:
        return xml
    parts = _CDATA.split(xml)  # odd indexes are the CDATA sections
    return b"".join(part if i % 2 else _BARE_AMPERSAND.sub(b"&amp;", part) for i, part in enumerate(parts))


def _to_utf8(text: str) -> bytes:
    """The feed, decoded by us (:func:`decode_document`), as UTF-8 with a matching declaration.

    feedparser trusts the XML declaration and guesses otherwise, which turns an undeclared or
    wrongly declared windows-1256 feed into mojibake. :func:`decode_document` applies one order
    for pages and feeds alike: BOM, HTTP header, in-document declaration, then detection among
    the Arabic code pages.
    """
    text = _XML_DECL_TEXT.sub("", text.lstrip("\ufeff"), count=1)
    return b'<?xml version="1.0" encoding="utf-8"?>' + text.encode("utf-8")


_XML_DECL_TEXT = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)


def _entry_time(entry) -> datetime | None:
    """The entry's date: feedparser's reading, except where it is wrong (a zone it misreads:
    see :func:`written_zone`) or has none (dates in Arabic words, ``28/08/2018 19:45``)."""
    for key in ("published", "updated", "created"):
        if key not in entry and f"{key}_parsed" not in entry:  # (feedparser warns on a missing "updated")
            continue
        raw = entry.get(key)
        if isinstance(raw, str) and written_zone(raw):
            found = parse_feed_date(raw)
            if found:
                return found
        st = entry.get(f"{key}_parsed")
        if st:
            try:
                return datetime.fromtimestamp(calendar.timegm(st), tz=timezone.utc)
            except (OverflowError, ValueError, TypeError):
                pass
        if isinstance(raw, str) and (found := parse_feed_date(raw)):
            return found
    return None


def newest_first(candidates: list[Candidate], n: int) -> list[Candidate]:
    """The ``n`` newest candidates by entry date, in feed order. Feeds list oldest first as
    often as newest first, so the first ``n`` in feed order may be the oldest. Undated entries
    rank after dated ones, in feed order (for a feed without dates: its first ``n``)."""
    if len(candidates) <= n:
        return candidates
    ranked = sorted(range(len(candidates)),
                    key=lambda i: (candidates[i].feed_published is None,
                                   -(candidates[i].feed_published.timestamp() if candidates[i].feed_published else 0),
                                   i))
    keep = set(ranked[:n])
    return [c for i, c in enumerate(candidates) if i in keep]


def _entry_link(entry) -> str | None:
    link = entry.get("link")
    if link:
        return link
    for ln in entry.get("links") or []:
        if ln.get("rel", "alternate") == "alternate" and ln.get("href"):
            return ln["href"]
    guid = entry.get("id")
    if guid and str(guid).startswith(("http://", "https://")):
        return guid
    return None


def entry_key(entry) -> str:
    """A short, stable name for a feed entry that has no link, so that the poll state can
    remember it was reported: a hash of what the entry says (id, title, summary, date, author,
    categories, content). Two entries that differ in any of these are told apart, even when they
    share an id (a reused guid) or have no id, title or summary at all."""
    # not "updated": feedparser maps it to "published" when missing, with a deprecation warning
    parts = [entry.get(name) or "" for name in ("id", "title", "summary", "published", "author")]
    parts += sorted(str(tag.get("term") or "") for tag in entry.get("tags") or ())
    parts += [str(c.get("value") or "") for c in entry.get("content") or ()]
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def parse_feed(body: bytes, content_type: str | None, feed_url: str, source_id: str,
               max_entries: int | None = None, handled: Container[str] = frozenset(),
               given_up: Container[str] = frozenset()) -> ParsedFeed:
    """Parse a feed document into candidates; raise :class:`FeedError` if it is not a feed.

    Entries without a usable link become problems (dead letters), not silent drops. The
    same canonical URL listed twice in one feed yields one candidate. ``max_entries`` keeps the
    newest entries by date (:func:`newest_first`), not the first ones in feed order, among
    the entries whose article id is not in ``handled`` (articles already stored): the limit
    bounds the work of one poll, and the entries it leaves out are taken by later polls
    instead of being crowded out by the same newest entries every time. Without a limit, or
    under it, ``handled`` changes nothing (the stored entries are skipped later, and counted
    there). Entries whose id is in ``given_up`` (pages that keep failing, see
    :class:`akhbar.transforms.state.PageFailures`) are left out in every case, before the limit;
    so are malformed links in it (the id of the link as written), which are not reported again.
    """
    text, encoding = decode_document(body, content_type)
    if declares_entities(text):
        # Entity declarations are how billion-laughs and external-entity (file-reading) attacks
        # work; real news feeds never declare entities.
        raise FeedError("hostile_xml", "feed declares XML entities (<!ENTITY …>); refused")
    utf8 = _to_utf8(text)
    media_type = (content_type or "application/xml").split(";")[0].strip() or "application/xml"
    parsed = feedparser.parse(
        _escape_bare_ampersands(utf8),
        response_headers={"content-type": f"{media_type}; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.entries and (parsed.get("bozo") or not parsed.get("version")):
        exc = parsed.get("bozo_exception")
        raise FeedError("feed_parse_error", f"not a parsable feed: {exc or 'no entries and no feed version'}")
    candidates: list[Candidate] = []
    problems: list[FeedProblem] = []
    dropped = 0  # entries given up on
    seen: set[str] = set()
    for entry in parsed.entries:
        link = _entry_link(entry)
        if not link:
            problems.append(FeedProblem(None, "entry_without_link",
                                        f"entry {entry.get('title') or entry.get('id') or '?'!r} has no link",
                                        entry_key(entry)))
            continue
        try:
            url = canonical_url(link, feed_url if not link.startswith(("http://", "https://")) else None)
        except ValueError as e:  # BadURL, and anything else a malformed link raises: one entry, not the feed
            if article_id(link) in given_up:  # reported in enough runs already (state.PageFailures)
                dropped += 1
                continue
            problems.append(FeedProblem(link, "bad_url", str(e)))
            continue
        if url in seen:
            continue
        seen.add(url)
        candidates.append(Candidate(
            source_id=source_id, feed_url=feed_url, link=link, url=url, article_id=article_id(url),
            feed_title=(entry.get("title") or "").strip() or None,
            feed_summary=(entry.get("summary") or "").strip() or None,
            feed_published=_entry_time(entry),
        ))
    listed = len(candidates)
    candidates = [c for c in candidates if c.article_id not in given_up]
    dropped += listed - len(candidates)
    over_limit = already = 0
    if max_entries and len(candidates) > max_entries:
        fresh = [c for c in candidates if c.article_id not in handled]
        already = len(candidates) - len(fresh)
        candidates = newest_first(fresh, max_entries)
        over_limit = len(fresh) - len(candidates)
    return ParsedFeed(parsed.get("version") or "unknown", parsed.feed.get("title"), candidates, problems, encoding,
                      over_limit, already, dropped)
