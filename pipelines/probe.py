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
from akhbar.schemas.records import Source
from akhbar.transforms.steps import FEED_ACCEPT, feed_type_problem, host_policy, robots_rule
from akhbar.transforms.http import FetchError, Fetcher, html_of
from akhbar.transforms.netguard import HostGuard
from akhbar.transforms.robots import RobotsCache


def probe(url: str, *, n_articles: int = 3, allow_private: bool = False, out=None,
          fetcher: Fetcher | None = None, source: Source | None = None) -> int:
    """``fetcher``: one to use instead of a new one (e.g. one that records what it fetched).
    ``source``: the source the feed belongs to; its ``obey_robots``, ``min_interval`` and
    ``max_connections`` apply as in a run."""
    out = out or sys.stdout  # looked up per call: sys.stdout may have been replaced since import
    fetcher = fetcher or Fetcher(guard=HostGuard(allow_private=allow_private))
    policy = host_policy(source, fetcher.config)
    try:
        resp = fetcher.fetch(url, accept=FEED_ACCEPT, policy=policy)
        problem = feed_type_problem(resp.content_type)  # the poll's rule: refused before parsing
        if problem:
            raise FeedError("unsupported_content_type", problem)
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
            html, encoding = html_of(fetcher.fetch(c.url, policy=policy, allow=robots_rule(robots, source)))
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
