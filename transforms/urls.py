"""Canonical URLs and the stable article id derived from them."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from courlan import normalize_url

# Query parameters that identify a campaign, a click or a session, never the article: whole names,
# and the prefixes of analytics namespaces (utm_source, pk_campaign, mtm_kwd …). Only these are
# dropped. courlan's own tracker filter is not used: it also drops any name that merely contains
# "cid", "eid", "uid", "source", "session", "ref", "ga" … (cid=2, source=12, gallery=3), which
# merged different articles into one URL and fetched a page the feed never linked. A tracker left
# in costs little: the same text under two URLs is still dropped by its content hash.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "ysclid", "twclid", "gbraid", "wbraid", "igshid",
        "mc_cid", "mc_eid", "ocid", "cmpid", "ref", "ref_src", "src", "from", "share", "s_cid", "at_medium",
        "at_campaign", "rss", "feed", "_ga", "_gl", "spm", "ito", "xtor", "_hsenc", "_hsmi",
        "phpsessid", "jsessionid", "aspsessionid",
        "action_object_map", "action_type_map", "action_ref_map",  # Facebook's share links
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "itm_", "ga_", "mkt_", "oly_", "vero_", "ads_", "ad_", "fb_")


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")

# Leading host labels of mobile and AMP editions: ``m.example.com`` → ``example.com``.
MOBILE_HOST_LABELS = frozenset({"m", "mobile", "amp"})
# Query parameters that only ask for the AMP rendering (dropped whatever their value), and
# parameters dropped only with the value ``amp`` (``outputType=amp``, ``output=amp``).
AMP_PARAMS = frozenset({"amp", "amp_js_v", "amp_gsa", "usqp", "_gsa"})
AMP_VALUE_PARAMS = frozenset({"outputtype", "output", "format", "view"})
_AMP_SUFFIX = re.compile(r"(?:\.amp)+(\.html?)?$|(?:\.amp)+$", re.IGNORECASE)


class BadURL(ValueError):
    """A link that cannot be turned into a fetchable http(s) URL."""


def split_http_url(url: str) -> SplitResult:
    """``urlsplit`` for a URL that came from the web (a feed link, a ``Location`` header):
    :class:`BadURL` instead of the ``ValueError`` the standard library raises for an unclosed
    IPv6 bracket or a port that is not a number in 1-65535, and for anything but http(s) with a
    host. Without this, one broken link escapes as an unexpected error and takes its whole feed
    (or page) with it."""
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: a bad port only raises here
        host = parts.hostname
    except ValueError as e:
        raise BadURL(f"malformed URL {url!r}: {e}") from e
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise BadURL(f"not an http(s) URL: {url!r}")
    if port == 0 or any(ch.isspace() or ord(ch) < 32 for ch in parts.netloc):
        raise BadURL(f"malformed URL {url!r}: bad host or port")
    return parts


def canonical_url(link: str, base: str | None = None) -> str:
    """The canonical form of ``link`` (resolved against ``base``).

    Lower-case scheme and host, default port removed, percent-encoding made consistent (an
    Arabic path written raw or encoded gives one URL), tracking parameters (:data:`TRACKING_PARAMS`,
    :data:`TRACKING_PREFIXES`) and the fragment dropped (a ``#!`` one is kept: it addresses the
    page), remaining query parameters sorted. Idempotent.
    """
    if not link or not link.strip():
        raise BadURL("empty link")
    try:
        raw = urljoin(base, link.strip()) if base else link.strip()
    except ValueError as e:  # urljoin splits both URLs: an unclosed "[" raises
        raise BadURL(f"malformed URL {link!r}: {e}") from e
    given = split_http_url(raw)
    try:  # scheme, host, port and path from courlan; the query is filtered here, not by courlan
        norm = normalize_url(urlunsplit((given.scheme, given.netloc, given.path, "", "")), strict=False)
    except Exception as e:  # courlan raises ValueError and friends on malformed netlocs
        raise BadURL(f"malformed URL {link!r}: {e}") from e
    p = split_http_url(norm)
    path = _ESCAPE.sub(lambda m: m.group(0).upper(), p.path or "/")
    for _ in range(8):  # to a fixed point: "/amp.amp" -> "/amp" -> "/", "/amp/../x" -> "/../x" -> "/x"
        before, path = path, _without_dot_segments(_main_path(path))
        if path == before:
            break
    query = [(k, v) for k, v in parse_qsl(given.query, keep_blank_values=True)
             if not _tracking(k) and not _amp_param(k, v)]
    # a "#!" fragment is the address of an AJAX page ("/#!/news/1"), any other is a place in the page
    fragment = given.fragment if given.fragment.startswith("!") else ""
    return urlunsplit((p.scheme, _main_host(p.netloc), path, urlencode(sorted(query)), fragment))


def _tracking(key: str) -> bool:
    k = key.lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def _main_host(netloc: str) -> str:
    """``m.``/``mobile.``/``amp.`` labels removed from the front while two labels remain."""
    host, sep, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    labels = host.split(".")
    while len(labels) > 2 and labels[0] in MOBILE_HOST_LABELS:
        labels = labels[1:]
    return ".".join(labels) + (sep + port if sep else "")


def _main_path(path: str) -> str:
    """AMP path variants to the article's path: ``amp`` segments dropped (``/news/amp/1`` →
    ``/news/1``, ``/a/amp/`` → ``/a/``, ``/a/amp`` → ``/a``), ``x.amp.html`` → ``x.html``, a trailing ``.amp`` dropped."""
    segs = path.split("/")[1:]
    trailing = bool(segs) and segs[-1] == ""
    kept = [s for s in segs if s.lower() != "amp"]
    if kept and kept[-1] == "":
        kept.pop()
    if kept:
        kept[-1] = _AMP_SUFFIX.sub(lambda m: m.group(1) or "", kept[-1])
    return "/" + "/".join(kept) + ("/" if trailing and kept else "")


def _without_dot_segments(path: str) -> str:
    """``.`` and ``..`` segments resolved (RFC 3986, 5.2.4), as a browser does before requesting."""
    if "." not in path:
        return path
    out: list[str] = []
    segs = path.split("/")[1:]
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _amp_param(key: str, value: str) -> bool:
    k = key.lower()
    return k in AMP_PARAMS or (k in AMP_VALUE_PARAMS and value.lower() == "amp")


def article_id(url: str) -> str:
    """Stable id of an article: 32 hex digits of SHA-256 of its canonical URL."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
