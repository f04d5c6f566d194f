"""Canonical URLs and the stable article id derived from them."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from courlan import normalize_url

# Query parameters that identify a campaign or a click, never the article. courlan drops the
# utm_* family and a few others; these are the ones Arabic news feeds add on top of that.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid",
        "ocid", "cmpid", "ref", "ref_src", "src", "from", "share", "s_cid", "at_medium",
        "at_campaign", "rss", "feed", "_ga", "spm", "ito",
    }
)


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
    Arabic path written raw or encoded gives one URL), tracking parameters and the fragment
    dropped, remaining query parameters sorted. Idempotent.
    """
    if not link or not link.strip():
        raise BadURL("empty link")
    try:
        raw = urljoin(base, link.strip()) if base else link.strip()
    except ValueError as e:  # urljoin splits both URLs: an unclosed "[" raises
        raise BadURL(f"malformed URL {link!r}: {e}") from e
    split_http_url(raw)
    try:
        norm = normalize_url(raw, strict=False)
    except Exception as e:  # courlan raises ValueError and friends on malformed netlocs
        raise BadURL(f"malformed URL {link!r}: {e}") from e
    p = split_http_url(norm)
    path = _main_path(_ESCAPE.sub(lambda m: m.group(0).upper(), p.path or "/"))
    query = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True)
             if k.lower() not in TRACKING_PARAMS and not _amp_param(k, v)]
    return urlunsplit((p.scheme, _main_host(p.netloc), path, urlencode(sorted(query)), ""))


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


def _amp_param(key: str, value: str) -> bool:
    k = key.lower()
    return k in AMP_PARAMS or (k in AMP_VALUE_PARAMS and value.lower() == "amp")


def article_id(url: str) -> str:
    """Stable id of an article: 32 hex digits of SHA-256 of its canonical URL."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
