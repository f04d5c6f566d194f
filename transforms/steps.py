"""Thin Beam DoFns around the pure functions of this package.

Every step derives from :class:`Step`: it counts what it does and turns every failure of an
element into a dead-letter record on the ``dead_letter`` output (never a silent drop, never a
crashed pipeline). Settings arrive as constructor arguments, never from globals.
"""
from __future__ import annotations

import collections
import functools
import threading
import time
import traceback
from collections.abc import Container, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.utils.windowed_value import WindowedValue

from akhbar.schemas.records import Article, Candidate, DeadLetter, Page, Source
from akhbar.transforms.arabic import tokens
from akhbar.transforms.classify import classify, load_lexicon, parse_lexicon, read_lexicon_text
from akhbar.transforms.dedup import (
    MinHasher,
    NearDupConfig,
    NearItem,
    assign_near_duplicates,
    content_hash,
    shingle_hashes,
)
from akhbar.transforms.extract import ExtractError, extract
from akhbar.transforms.feeds import FeedError, parse_feed
from akhbar.transforms.feedstate import (
    FeedState,
    after_body,
    after_failure,
    after_not_modified,
    backoff_until,
    body_hash,
    conditional_headers,
    save_feed_states,
    with_attempt_capped,
    with_entries,
)
from akhbar.transforms.http import FEED_TYPES, FetchConfig, FetchError, Fetcher, HostPolicy, html_of
from akhbar.transforms.outputlock import Fence, commit_guard
from akhbar.transforms import tally
from akhbar.transforms.robots import RobotsCache
from akhbar.transforms.netguard import HostGuard
from akhbar.transforms.state import PriorState

DEAD = "dead_letter"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def timed(process):
    """Wrap a step's ``process`` so that the CPU time this thread spends inside it (not in the
    steps its outputs run through next, which Beam may call while it is suspended) is added to
    the ``<stage>.cpu_us`` counter: the per-stage cost ``bench/perf.py`` reports."""

    @functools.wraps(process)
    def wrapper(self, *args, **kwargs):
        spent = 0.0
        started = time.thread_time()
        for out in process(self, *args, **kwargs):
            spent += time.thread_time() - started
            yield out
            started = time.thread_time()
        spent += time.thread_time() - started
        self.count("cpu_us", round(spent * 1e6))

    return wrapper


class Step(beam.DoFn):
    """Base of every step: counters and dead letters built in."""

    stage = "step"

    def __init__(self, run_id: str | None = None):
        self.run_id = run_id

    def count(self, name: str, n: int = 1) -> None:
        tally.count(f"{self.stage}.{name}", n)  # a Beam counter, also seen by the live progress line

    def dead(self, *, url: str | None, source_id: str | None, reason: str, message: str,
             detail: str | None = None, feed_url: str | None = None) -> pvalue.TaggedOutput:
        self.count(f"dead.{reason}")
        return pvalue.TaggedOutput(DEAD, DeadLetter(
            url=url, source_id=source_id, stage=self.stage, reason=reason, message=message[:2000],
            time=utcnow(), detail=detail[:20000] if detail else None, feed_url=feed_url, run_id=self.run_id,
        ))

    def crashed(self, *, url: str | None, source_id: str | None, exc: BaseException,
                feed_url: str | None = None) -> pvalue.TaggedOutput:
        """An unexpected exception: recorded with its stack, the element is not lost."""
        return self.dead(url=url, source_id=source_id, reason="internal_error",
                         message=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc(), feed_url=feed_url)


class HttpStep(Step):
    """A step that fetches: one pooled, guarded HTTP client per DoFn instance."""

    def __init__(self, fetch_config: FetchConfig, allow_private: bool, run_id: str | None = None):
        super().__init__(run_id)
        self.fetch_config = fetch_config
        self.allow_private = allow_private

    def setup(self):
        self.fetcher = Fetcher(self.fetch_config, HostGuard(allow_private=self.allow_private))


FEED_STATE = "feed_state"
FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, "
               "text/xml;q=0.8, */*;q=0.1")


def host_policy(source: Source | None, config: FetchConfig) -> HostPolicy:
    """Politeness for a source's hosts: its own settings, else the run's defaults."""
    interval = source.min_interval_s if source and source.min_interval_s is not None else config.host_interval
    concurrency = source.max_connections if source and source.max_connections else config.host_concurrency
    return HostPolicy(interval, concurrency)


def feed_type_problem(content_type: str | None) -> str | None:
    """Why a feed answered with this Content-Type is refused (``unsupported_content_type``), or
    ``None``; ``akhbar sources probe`` applies the same rule as the poll."""
    ctype = (content_type or "").lower()
    if ctype and not any(t in ctype for t in FEED_TYPES):
        return f"feed served as {content_type}"
    return None


def robots_rule(robots, source: Source | None):
    """The ``allow`` of an article fetch: robots.txt unless the source says ``obey_robots: false``."""
    return robots.check if source is None or source.obey_robots else None


class PollFeed(HttpStep):
    """(Source, feed URL) → Candidate for each entry; feed failures → dead letters.

    Sends the feed's validators (conditional GET) and emits the feed's new state on the
    ``feed_state`` output; feeds that keep failing are skipped until their backoff expires.
    """

    stage = "poll"

    def __init__(self, fetch_config: FetchConfig, allow_private: bool, run_id: str | None = None,
                 ignore_backoff: bool = False):
        super().__init__(fetch_config, allow_private, run_id)
        self.ignore_backoff = ignore_backoff

    @timed
    def process(self, element: tuple[Source, str], states: dict[str, FeedState], prior: PriorState | None = None,
                also_handled: Container[str] = ()):
        """``prior``: the stored articles, whose entries, like those in ``also_handled`` (a
        running job's own), do not count towards the source's ``max_articles_per_poll`` (see
        :func:`parse_feed`), and the pages given up on (left out; ``poll.given_up``)."""
        source, feed_url = element
        now = utcnow()
        state = states.get(feed_url)
        until = backoff_until(state, source.poll_interval_s, now)
        if until and now < until and not self.ignore_backoff:
            self.count("skipped_backoff")
            capped = with_attempt_capped(state, now)
            if capped is not None:  # a last attempt in the future: from now on the backoff counts from now
                yield pvalue.TaggedOutput(FEED_STATE, capped)
            return
        self.count("polled")
        sent = conditional_headers(state)
        interval = source.poll_interval_s

        def failed(reason: str, message: str, status: int | None = None, detail: str | None = None):
            yield pvalue.TaggedOutput(FEED_STATE, after_failure(state, feed_url, source.id, now, reason, status,
                                                                interval))
            yield self.dead(url=feed_url, source_id=source.id, reason=reason, message=message, detail=detail,
                            feed_url=feed_url)

        try:
            resp = self.fetcher.fetch(feed_url, accept=FEED_ACCEPT, headers=sent,
                                      policy=host_policy(source, self.fetch_config))
        except FetchError as e:
            yield from failed(e.reason, str(e), e.status)
            return
        except Exception as e:  # noqa: BLE001 - recorded, not swallowed
            yield pvalue.TaggedOutput(FEED_STATE, after_failure(state, feed_url, source.id, now, "internal_error", None,
                                                                interval))
            yield self.crashed(url=feed_url, source_id=source.id, exc=e, feed_url=feed_url)
            return
        if resp.status == 304:
            self.count("not_modified")
            yield pvalue.TaggedOutput(FEED_STATE, after_not_modified(state, now))
            return
        self.count("feeds_fetched")
        new_state, unchanged = after_body(state, feed_url, source.id, now, resp.status, resp.headers,
                                          body_hash(resp.body), bool(sent))
        if unchanged:  # same bytes as the last committed poll: every entry was handled then
            self.count("unchanged")
            yield pvalue.TaggedOutput(FEED_STATE, new_state)
            return
        problem = feed_type_problem(resp.content_type)
        if problem:
            yield from failed("unsupported_content_type", problem, resp.status)
            return
        try:
            parsed = parse_feed(resp.body, resp.content_type, resp.final_url, source.id,
                                max_entries=source.max_articles_per_poll,
                                handled=InAny(prior.article_ids if prior is not None else (), also_handled),
                                given_up=prior.given_up if prior is not None else frozenset())
        except FeedError as e:
            yield from failed(e.reason, str(e), resp.status, resp.body[:2000].decode("utf-8", "replace"))
            return
        except Exception as e:  # noqa: BLE001
            yield pvalue.TaggedOutput(FEED_STATE, after_failure(state, feed_url, source.id, now, "internal_error", None,
                                                                interval))
            yield self.crashed(url=feed_url, source_id=source.id, exc=e, feed_url=feed_url)
            return
        linkless = tuple(sorted({p.entry_key for p in parsed.problems if p.entry_key}))
        yield pvalue.TaggedOutput(FEED_STATE, with_entries(new_state, len(parsed.candidates), parsed.encoding,
                                                           parsed.over_limit, linkless))
        reported = set(state.linkless) if state is not None else set()
        for problem in parsed.problems:
            if problem.entry_key in reported:  # still in the feed, dead-lettered by an earlier poll
                self.count("linkless_reported_before")
                continue
            yield self.dead(url=problem.link, source_id=source.id, reason=problem.reason,
                            message=problem.message, feed_url=feed_url)
        self.count("entries", len(parsed.candidates))
        if parsed.over_limit:  # max_articles_per_poll: older entries left for a later poll, not failures
            self.count("over_limit", parsed.over_limit)
        if parsed.given_up:  # pages that keep failing (state.PageFailures): not fetched again
            self.count("given_up", parsed.given_up)
        if parsed.handled:  # left out before the limit: the same count SkipStored keeps for the others
            tally.count(f"{SkipStored.stage}.already_stored", parsed.handled)
        yield from parsed.candidates


class InAny:
    """A container holding what any of the given containers holds (without copying them)."""

    def __init__(self, *containers: Container[str]):
        self.containers = containers

    def __contains__(self, item) -> bool:
        return any(item in c for c in self.containers)


def commit_feed_states(updates: list[FeedState], prior: dict[str, FeedState], *committed, output: str,
                       fence: Fence | None = None) -> int:
    """Save the feed states; ``committed`` (the written articles and dead letters, as side
    inputs) makes Beam run this only after those writes have finished. With the run's ``fence``,
    only while the output's lock is still the run's."""
    return save_feed_states(output, prior, updates, **commit_guard(fence, "the feed state"))


class FetchPages(HttpStep):
    """Candidate → Page; keeps up to ``concurrency`` pages fetching in the background while the
    pages already fetched go on through extraction, so waiting on the network does not idle
    the worker."""

    stage = "fetch"

    def __init__(self, fetch_config: FetchConfig, allow_private: bool, concurrency: int = 8,
                 run_id: str | None = None, sources: dict[str, Source] | None = None):
        super().__init__(fetch_config, allow_private, run_id)
        self.concurrency = max(1, concurrency)
        self.sources = sources or {}

    def setup(self):
        super().setup()
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="akhbar-fetch")
        self.robots = RobotsCache(self.fetcher)
        self.local = threading.local()

    def teardown(self):
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def start_bundle(self):
        self.pending: collections.deque = collections.deque()

    def process(self, element: Candidate, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        self.pending.append((self.pool.submit(self._fetch_in_thread, element), timestamp, window))
        # in input order: every page already fetched, and the oldest ones once enough are in flight
        while self.pending and (len(self.pending) > 2 * self.concurrency or self.pending[0][0].done()):
            yield from self._emit(self.pending.popleft())

    def finish_bundle(self):
        while self.pending:
            yield from self._emit(self.pending.popleft())

    def count(self, name: str, n: int = 1) -> None:
        # Beam's counters only count in the bundle's own thread: a fetch thread keeps its
        # counts with its result, and they are added when the result is emitted
        kept = getattr(getattr(self, "local", None), "counts", None)
        if kept is not None:
            kept.append((name, n))
        else:
            super().count(name, n)

    def _fetch_in_thread(self, c: Candidate) -> tuple[list, list[tuple[str, int]]]:
        counts: list[tuple[str, int]] = []
        self.local.counts = counts
        started = time.thread_time()
        try:
            outputs = list(self.fetch_one(c))
        finally:
            self.local.counts = None
        counts.append(("cpu_us", round((time.thread_time() - started) * 1e6)))
        return outputs, counts

    def _emit(self, item) -> Iterable:
        """One element's outputs, each in that element's window."""
        future, ts, win = item
        outputs, counts = future.result()
        for name, n in counts:
            self.count(name, n)
        for out in outputs:
            if isinstance(out, pvalue.TaggedOutput):
                yield pvalue.TaggedOutput(out.tag, WindowedValue(out.value, ts, [win]))
            else:
                yield WindowedValue(out, ts, [win])

    def fetch_one(self, c: Candidate) -> Iterable:
        source = self.sources.get(c.source_id)
        try:
            # robots.txt is asked before every hop: a redirect may lead to a disallowed path or
            # to another site with its own robots.txt
            resp = self.fetcher.fetch(c.url, policy=host_policy(source, self.fetch_config),
                                      allow=robots_rule(self.robots, source))
            html, encoding = html_of(resp)
        except FetchError as e:
            yield self.dead(url=c.url, source_id=c.source_id, reason=e.reason, message=str(e), feed_url=c.feed_url)
            return
        except Exception as e:  # noqa: BLE001
            yield self.crashed(url=c.url, source_id=c.source_id, exc=e, feed_url=c.feed_url)
            return
        self.count("pages")
        yield Page(candidate=c, final_url=resp.final_url, status=resp.status, content_type=resp.content_type,
                   html=html, encoding=encoding, fetched_at=utcnow())


class ExtractArticles(Step):
    """Page → Article (body, title, dates, language, content hash, MinHash signature)."""

    stage = "extract"

    def __init__(self, near_config: NearDupConfig, min_words: int, run_id: str | None = None):
        super().__init__(run_id)
        self.near_config = near_config
        self.min_words = min_words

    def setup(self):
        self.hasher = MinHasher(self.near_config)

    @timed
    def process(self, page: Page):
        c = page.candidate
        try:
            ex = extract(page.html, c.url, feed_title=c.feed_title, feed_published=c.feed_published,
                         now=page.fetched_at, min_words=self.min_words)
        except ExtractError as e:
            yield self.dead(url=c.url, source_id=c.source_id, reason=e.reason, message=str(e), feed_url=c.feed_url)
            return
        except Exception as e:  # noqa: BLE001
            yield self.crashed(url=c.url, source_id=c.source_id, exc=e, feed_url=c.feed_url)
            return
        toks = tokens(ex.body)  # normalized once for the content hash and the shingles
        hashes = shingle_hashes(ex.body, self.near_config.shingle, toks)  # computed once, used by dedup too
        self.count("articles")
        yield Article(
            article_id=c.article_id, url=c.url, source_id=c.source_id, title=ex.title or (c.feed_title or ""),
            body=ex.body, published_at=ex.published_at, fetched_at=page.fetched_at, language=ex.language,
            content_hash=content_hash(ex.body, toks), feed_url=c.feed_url, published_source=ex.published_source,
            declared_language=ex.declared_language, encoding=page.encoding, run_id=self.run_id,
            credit=ex.credit, dateline=ex.dateline, signature=self.hasher.signature_of(hashes), shingles=hashes,
        )


class Classify(Step):
    """Article → Article with topics, scores and evidence."""

    stage = "classify"

    def __init__(self, lexicon_path: str | None, thresholds: dict[str, float] | None, run_id: str | None = None):
        super().__init__(run_id)
        self.lexicon_path = lexicon_path
        # Read here, where the pipeline is built: workers on other machines get the text with
        # the step instead of a path that exists only on the launching machine.
        self.lexicon_text = read_lexicon_text(lexicon_path) if lexicon_path else None
        self.thresholds = thresholds

    def setup(self):
        self.lexicon = (load_lexicon() if self.lexicon_text is None
                        else parse_lexicon(self.lexicon_text, self.lexicon_path))

    @timed
    def process(self, a: Article):
        try:
            r = classify(a.title, a.body, self.lexicon, thresholds=self.thresholds)
        except Exception as e:  # noqa: BLE001
            yield self.crashed(url=a.url, source_id=a.source_id, exc=e, feed_url=a.feed_url)
            return
        for t in r.topics:
            self.count(f"topic.{t}")
        yield a.replace(topics=tuple(r.topics), nato_score=r.nato_score, ukraine_score=r.ukraine_score,
                        evidence=tuple(f"{topic}:{term}" for topic, terms in r.evidence.items() for term in terms))

    class Failed(Step):
        """(article, message, detail) from the learned model's RunInference → a classify dead letter."""

        stage = "classify"

        def process(self, element):
            a, message, detail = element
            yield self.dead(url=a.url, source_id=a.source_id, reason="internal_error",
                            message=f"topic model: {message}", detail=detail or None, feed_url=a.feed_url).value


def first_seen_key(a: Article) -> tuple:
    """Order of 'first seen' among new articles: earliest publication, then fetch, then id."""
    published = a.published_at or a.fetched_at
    return (published, a.fetched_at, a.article_id)


class SkipStored(Step):
    """Drop candidates whose canonical URL is already in a committed file (before fetching), or
    pages fetched for one (streaming cycles fetch before the cycle that writes them)."""

    stage = "dedup"

    def process(self, c: Candidate | Page, prior: PriorState):
        if (c.candidate if isinstance(c, Page) else c).article_id in prior.article_ids:
            self.count("already_stored")
            return
        yield c


_FAR = datetime.max.replace(tzinfo=timezone.utc)


def candidate_order(c: Candidate) -> tuple:
    """The same canonical URL from several feeds: the one kept is the first in this order."""
    return (c.feed_published or _FAR, c.feed_url, c.link)


def earliest_candidate(candidates: Iterable[Candidate]) -> Candidate:
    return min(candidates, key=candidate_order)


def earliest_page(pages: Iterable[Page]) -> Page:
    return min(pages, key=lambda page: candidate_order(page.candidate))


class DropExactDuplicates(Step):
    """(content_hash, [articles]) → the first-seen one, unless the content is already stored."""

    stage = "dedup"

    @timed
    def process(self, element, prior: PriorState):
        chash, articles = element
        articles = sorted(articles, key=first_seen_key)
        if chash in prior.content_hashes:
            self.count("exact_duplicates_of_stored", len(articles))
            return
        self.count("exact_duplicates_in_run", len(articles) - 1)
        yield articles[0]


def near_duplicate_key(a: Article, config: NearDupConfig | None = None) -> NearItem:
    """What the global near-duplicate pass needs of an article: order, id, MinHash signature and
    size (candidates), the shingle hashes, source and time (verification, boilerplate)."""
    hashes = a.shingles if a.shingles is not None else shingle_hashes(a.body, (config or NearDupConfig()).shingle)
    signature = a.signature or MinHasher(config).signature_of(hashes)
    return NearItem(first_seen_key(a), a.article_id, signature, len(hashes), hashes, a.source_id,
                    a.published_at or a.fetched_at)


def near_duplicate_assignments(items: list[tuple], prior: PriorState, config: NearDupConfig) -> dict[str, str]:
    """All new articles' :func:`near_duplicate_key` → {article_id: duplicate_of}."""
    if not items:  # nothing new: the window's index (a second or two on a large output) is not built
        return {}
    started = time.thread_time()
    out = assign_near_duplicates(prior.index(config), items)
    tally.count("near.cpu_us", round((time.thread_time() - started) * 1e6))
    return out


def without_fingerprints(a: Article) -> Article:
    """The article without its MinHash signature and shingle hashes: only the near-duplicate
    pass needs them, and every article waits, held in memory, until that pass is done."""
    return a.replace(signature=b"", shingles=None)


def mark_near_duplicate(a: Article, assignments: dict[str, str]) -> Article:
    dup = assignments.get(a.article_id)
    if dup:
        tally.count("dedup.near_duplicates")
    return a.replace(duplicate_of=dup, signature=b"", shingles=None)
