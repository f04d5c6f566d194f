"""Canonical URLs and the stable article id derived from them."""
from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

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


class BadURL(ValueError):
    """A link that cannot be turned into a fetchable http(s) URL."""


def canonical_url(link: str, base: str | None = None) -> str:
    """The canonical form of ``link`` (resolved against ``base``).

    Lower-case scheme and host, default port removed, percent-encoding made consistent (an
    Arabic path written raw or encoded gives one URL), tracking parameters and the fragment
    dropped, remaining query parameters sorted. Idempotent.
    """
    if not link or not link.strip():
        raise BadURL("empty link")
    raw = urljoin(base, link.strip()) if base else link.strip()
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadURL(f"not an http(s) URL: {link!r}")
    try:
        norm = normalize_url(raw, strict=False)
    except Exception as e:  # courlan raises ValueError and friends on malformed netlocs
        raise BadURL(f"malformed URL {link!r}: {e}") from e
    p = urlsplit(norm)
    path = _ESCAPE.sub(lambda m: m.group(0).upper(), p.path or "/")
    query = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k.lower() not in TRACKING_PARAMS]
    return urlunsplit((p.scheme, p.netloc, path, urlencode(sorted(query)), ""))


def article_id(url: str) -> str:
    """Stable id of an article: 32 hex digits of SHA-256 of its canonical URL."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
