"""``akhbar sources probe URL``: what the pipeline would make of a feed, writing nothing.

Runs the same functions as the pipeline (fetch, parse, extract, classify) outside Beam, so
an operator sees in seconds whether a new source works.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

from akhbar.transforms.classify import classify, load_lexicon
from akhbar.transforms.extract import ExtractError, extract
from akhbar.transforms.feeds import FeedError, parse_feed
from akhbar.transforms.steps import FEED_ACCEPT
from akhbar.transforms.http import FetchError, Fetcher, html_of
from akhbar.transforms.netguard import HostGuard
from akhbar.transforms.robots import RobotsCache


def probe(url: str, *, n_articles: int = 3, allow_private: bool = False, out=sys.stdout,
          fetcher: Fetcher | None = None) -> int:
    """``fetcher``: one to use instead of a new one (e.g. one that records what it fetched)."""
    fetcher = fetcher or Fetcher(guard=HostGuard(allow_private=allow_private))
    try:
        resp = fetcher.fetch(url, accept=FEED_ACCEPT)
        feed = parse_feed(resp.body, resp.content_type, resp.final_url, "probe")
    except (FetchError, FeedError) as e:
        print(f"FEED FAILED  {url}\n  reason: {e.reason}\n  {e}", file=out)
        return 1
    print(f"feed    {url}\n  format: {feed.version}  title: {feed.title!r}  entries: {len(feed.candidates)}"
          f"  problems: {len(feed.problems)}  ({resp.elapsed:.2f} s, {len(resp.body)} bytes)", file=out)
    for p in feed.problems:
        print(f"  problem: {p.reason}: {p.message}", file=out)
    lexicon = load_lexicon()
    robots = RobotsCache(fetcher)
    failures = 0
    for c in feed.candidates[:n_articles]:
        print(f"\narticle {c.url}", file=out)
        try:
            html, encoding = html_of(fetcher.fetch(c.url, allow=robots.check))
            ex = extract(html, c.url, feed_title=c.feed_title, feed_published=c.feed_published,
                         now=datetime.now(timezone.utc))
        except (FetchError, ExtractError) as e:
            failures += 1
            print(f"  FAILED {e.reason}: {e}", file=out)
            continue
        r = classify(ex.title, ex.body, lexicon)
        first = " ".join(ex.body.split("\n")[0].split()[:30])
        print(f"  title:     {ex.title}", file=out)
        print(f"  published: {ex.published_at.isoformat() if ex.published_at else '-'} (from {ex.published_source or '-'})", file=out)
        print(f"  language:  {ex.language} (declared {ex.declared_language or '-'}), encoding {encoding}", file=out)
        print(f"  words:     {len(ex.body.split())}", file=out)
        print(f"  topics:    {', '.join(r.topics) or '-'} (nato {r.nato_score:.2f}, ukraine {r.ukraine_score:.2f})", file=out)
        print(f"  begins:    {first}…", file=out)
    return 0 if failures == 0 else 1
