"""Every dead-letter reason code, in one table: what it means and whether it is retried.

``docs/dead-letters.md`` is generated from this table (``python -m akhbar.schemas.reasons``) and a
test checks that every code the code can emit is listed here.
"""
from __future__ import annotations

from akhbar.transforms.http import TRANSIENT_STATUSES

# code: (stages, meaning, retried within the run)
REASONS: dict[str, tuple[str, str, str]] = {
    "http_NNN": ("poll, fetch", "The server answered with HTTP status NNN (e.g. http_404, http_503). A 429/503 whose "
                 "Retry-After is longer than the backoff cap (30 s) or the time left fails at once, and the host's "
                 "other pages fail with the same code, unrequested, until then (at most a day).",
                 "yes for " + ", ".join(map(str, sorted(TRANSIENT_STATUSES))) + "; no for other statuses"),
    "timeout": ("poll, fetch", "Connect, read or total time limit reached (--total-timeout bounds the whole fetch of "
                "a URL: every redirect hop, retry and pause, the site's robots.txt, also a server dripping headers or "
                "body bytes, and a host name that has not resolved when the time runs out).",
                "yes, within the total time"),
    "connection_error": ("poll, fetch", "Connection refused or reset, or the response broke off.", "yes"),
    "dns_error": ("poll, fetch", "The host name does not resolve.", "yes"),
    "blocked_address": ("poll, fetch", "The host is or resolves to a private, loopback, link-local, multicast or "
                        "reserved address (any spelling, any redirect hop); allowed only with --allow-private-hosts.", "no"),
    "bad_url": ("poll, fetch", "Not an http(s) URL with a host, or a malformed one (an unclosed IPv6 bracket, a port "
                "that is not 1-65535); also a feed entry's link (that entry only) or a redirect target.", "no"),
    "bad_redirect": ("poll, fetch", "A redirect without a Location header.", "no"),
    "redirect_loop": ("poll, fetch", "A redirect chain returned to a URL it had visited.", "no"),
    "too_many_redirects": ("poll, fetch", "More redirects than the limit (5).", "no"),
    "too_large": ("poll, fetch", "The body (after decompression: gzip bombs too) is over --max-bytes; "
                  "stopped while streaming.", "no"),
    "bad_encoding": ("poll, fetch", "The compressed body cannot be decompressed: corrupt, a Content-Encoding we cannot "
                     "decode (br, zstd without their libraries), or gzip bytes without Content-Encoding that are "
                     "not gzip.", "no"),
    "unsupported_content_type": ("poll, fetch", "A page that is not HTML (PDF, image, video) or a feed that is not XML.",
                                 "no"),
    "robots_disallowed": ("fetch", "The site's robots.txt disallows the page for akhbar (checked for every redirect "
                          "hop, with the robots.txt of the hop's own site).", "no"),
    "robots_unavailable": ("fetch", "robots.txt could not be fetched (5xx, 429, timeout): the site is treated as "
                           "disallowed for now (RFC 9309).", "no (replay later)"),
    "feed_parse_error": ("poll", "The document is not a parsable RSS 2.0, RSS 1.0 or Atom feed.", "no"),
    "hostile_xml": ("poll", "The feed declares XML entities (billion laughs, external entities) anywhere before its "
                    "root element, in any encoding; refused unparsed.", "no"),
    "entry_without_link": ("poll", "A feed entry with no usable link. Reported by the first poll that lists it: "
                           "the feed state remembers it while the feed still lists it.", "no"),
    "unparsable_html": ("extract", "The page cannot be parsed as HTML.", "no"),
    "too_complex": ("extract", "The page is too big to extract in bounded time (more than 30,000 elements or "
                    "4,000,000 characters); refused before trafilatura runs.", "no"),
    "extract_timeout": ("extract", "Extraction ran over its time limit (10 s, checked between its steps).", "no"),
    "empty_body": ("extract", "The extracted body is shorter than --min-words (no article on the page).", "no"),
    "bad_partition": ("write", "A partition value taken from the data (source id, date) is not safe to use in a path; "
                      "the article was not written.", "no"),
    "internal_error": ("any", "An unexpected exception in a step; the stack trace is in `detail`.", "no"),
}


def is_known(code: str) -> bool:
    return code in REASONS or (code.startswith("http_") and code[5:].isdigit())


# failures of the moment (the host down, slow, or asking to wait) rather than of the page itself
PASSING = frozenset({"timeout", "connection_error", "dns_error", "robots_unavailable"})


def is_lasting(code: str) -> bool:
    """Whether a page that failed with ``code`` would most likely fail the same way at the next
    poll (a 404, a page without article text, robots.txt saying no), as opposed to a failure of
    the moment (a timeout, a 5xx, a 429: the site may answer next time)."""
    if code in PASSING:
        return False
    if code.startswith("http_") and code[5:].isdigit():
        status = int(code[5:])
        return status < 500 and status not in TRANSIENT_STATUSES
    return True


def reasons_markdown() -> str:
    from akhbar.transforms.state import GIVE_UP_AFTER_HOURS, MAX_PAGE_FAILURES

    lines = [
        "# Dead-letter reason codes",
        "",
        "Generated from `schemas/reasons.py` by `python -m akhbar.schemas.reasons > docs/dead-letters.md`.",
        "Every failed item is one row of `dead_letter/` with its `stage` and one of these `reason` codes.",
        "Retried items were tried again within the run (exponential backoff with jitter, `--retries`",
        "times, honouring `Retry-After`) before becoming a dead letter; `akhbar replay` can run dead letters again.",
        "",
        "A feed keeps listing an entry whose page failed, so later polls that find the feed changed try",
        "the page again. Once it has failed for a lasting reason (any code below but "
        + ", ".join(f"`{c}`" for c in sorted(PASSING)) + ",",
        "and `http_NNN` for " + ", ".join(str(c) for c in sorted(TRANSIENT_STATUSES) if c < 500) + " and every 5xx) in "
        f"{MAX_PAGE_FAILURES} runs (or streaming cycles) within",
        "`--dedup-window-days`, at the fetch or extract stage, the first and the latest of those failures at least",
        f"`--give-up-after` hours apart (default {GIVE_UP_AFTER_HOURS:g}: a page that a feed lists minutes before the site "
        "serves it is not",
        "given up by the polls of those minutes), polls leave the entry out and count it as `poll.given_up`;",
        "`akhbar replay` still takes it. A site that is down for a while loses nothing. An entry whose link is",
        "malformed (`bad_url` at the poll stage) stops being reported under the same rule.",
        "",
        "| code | stage | meaning | retried |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{code}` | {stage} | {meaning} | {retried} |" for code, (stage, meaning, retried) in REASONS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reasons_markdown(), end="")
