"""The keyed, stateful steps of the streaming graph, around the same steps batch mode uses.

* :class:`PollWhenDue` — keyed by feed URL: on each impulse tick, polls the feed with
  :class:`~akhbar.transforms.steps.PollFeed` when it is due (per-source interval, adapted by
  :mod:`akhbar.transforms.schedule`); the feed's validators live in keyed state, seeded from
  ``_state/feeds.json``.
* :class:`FirstSighting` — keyed by article id (canonical URL): the first sighting goes on
  (through :class:`~akhbar.transforms.steps.SkipStored`, so committed articles are skipped);
  later sightings are dropped. The state expires ``ttl`` after the URL was last seen, so memory
  is bounded by the URLs seen recently while an item that stays in its feed is never re-fetched.
* :class:`FirstContent` — the same per content hash, through
  :class:`~akhbar.transforms.steps.DropExactDuplicates`.
* :class:`NearDuplicates` — one key holds the near-duplicate index (a bag of entries, seeded
  from the committed files' index); entries older than the window are pruned by a timer.

Event time is the article's ``fetched_at`` (:func:`at_fetch_time`); expiry timers are
event-time timers, so tests drive them with ``TestStream`` watermarks.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import apache_beam as beam
from akhbar.schemas.records import Article, Candidate, DeadLetter
from akhbar.transforms import steps, tally
from akhbar.transforms.dedup import (
    IndexEntry,
    NearDupConfig,
    NearDupIndex,
    boilerplate_of,
)
from akhbar.transforms.feedstate import FeedState, load_feed_states, save_feed_health
from akhbar.transforms.outputlock import Fence, commit_guard
from akhbar.transforms.schedule import SourceSchedule, after_poll
from akhbar.transforms.sink import (
    WriteArticles,
    WriteDeadLetters,
    _WriteGroups,
)
from apache_beam import pvalue
from apache_beam.coders import BooleanCoder, PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Duration, Timestamp

NEAR_KEY = "near"
HEALTH_KEY = "feeds"

def _count(name: str, n: int = 1) -> None:
    tally.count(f"stream.{name}", n)


def _utc(ts: Timestamp) -> datetime:
    return ts.to_utc_datetime().replace(tzinfo=timezone.utc)


def at_fetch_time(a: Article) -> beam.window.TimestampedValue:
    return beam.window.TimestampedValue(a, a.fetched_at.timestamp())


def at_dead_letter_time(d: DeadLetter) -> beam.window.TimestampedValue:
    return beam.window.TimestampedValue(d, d.time.timestamp())


class PollWhenDue(beam.DoFn):
    """(feed URL, (Source, feed URL)) on every tick → candidates of the feed when it is due."""

    FEED = ReadModifyWriteStateSpec("feed_state", PickleCoder())
    SCHEDULE = ReadModifyWriteStateSpec("schedule", PickleCoder())
    LAST_IDS = ReadModifyWriteStateSpec("last_ids", PickleCoder())
    # ids this job sent on from the feed, newest last: with max_articles_per_poll they make room
    # for the entries an earlier poll left over (the stored ones are in ``prior``)
    SENT = ReadModifyWriteStateSpec("sent", PickleCoder())

    def __init__(self, fetch_config, allow_private: bool, run_id: str | None = None, ignore_backoff: bool = False):
        self.poller = steps.PollFeed(fetch_config, allow_private, run_id, ignore_backoff)

    def setup(self):
        self.poller.setup()

    def process(self, element, saved_feed_states, prior, timestamp=beam.DoFn.TimestampParam,
                feed=beam.DoFn.StateParam(FEED), schedule=beam.DoFn.StateParam(SCHEDULE),
                last_ids=beam.DoFn.StateParam(LAST_IDS), sent=beam.DoFn.StateParam(SENT)):
        feed_url, (source, _) = element
        now = _utc(timestamp)
        entry = schedule.read() or SourceSchedule(source.id, float(source.poll_interval_s), now)
        if now < entry.next_due:
            return
        state = feed.read() or saved_feed_states.get(feed_url)
        ids: set[str] = set()
        candidates: list[Candidate] = []
        got_body = False
        limit = source.max_articles_per_poll
        sent_before: tuple[str, ...] = (sent.read() or ()) if limit else ()
        for out in self.poller.process((source, feed_url), {feed_url: state} if state else {}, prior,
                                       frozenset(sent_before)):
            if isinstance(out, pvalue.TaggedOutput) and out.tag == steps.FEED_STATE:
                feed.write(out.value)
                yield out  # for the health written to _state/feeds.json (SaveFeedHealth)
            elif isinstance(out, pvalue.TaggedOutput):
                yield out
            else:
                got_body = True
                ids.add(out.article_id)
                candidates.append(out)
        before = last_ids.read() or frozenset()
        new = len(ids - before)
        if got_body:
            last_ids.write(frozenset(ids))
        if limit and candidates:
            # bounded: far more than a feed lists, so an id leaves only long after its entry did
            sent.write((sent_before + tuple(c.article_id for c in candidates))[-max(2000, 20 * limit):])
        schedule.write(after_poll(entry, source.poll_interval_s, now, new))
        _count("polls")
        _count("new_entries", new)
        yield from candidates


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LatestFeedStates(beam.CombineFn):
    """FeedStates → {feed URL: the one of its latest attempt}."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, state: FeedState):
        have = acc.get(state.feed_url)
        if have is None or (state.last_attempt or _EPOCH) >= (have.last_attempt or _EPOCH):
            acc[state.feed_url] = state
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for state in acc.values():
                self.add_input(out, state)
        return out

    def extract_output(self, acc):
        return acc


class SaveFeedHealth(beam.DoFn):
    """(one key, {feed URL: latest FeedState of a window}) → ``_state/feeds.json`` rewritten with
    that health, so ``akhbar sources health`` shows a running job's feeds. One key: the writes
    of successive windows are serialized instead of racing on the one file. The validators on
    file are kept (see :func:`~akhbar.transforms.feedstate.with_health_of`)."""

    SAVED = ReadModifyWriteStateSpec("saved_feed_states", PickleCoder())

    def __init__(self, output: str, fence: Fence | None = None):
        self.output = output
        self.fence = fence

    def process(self, element, saved=beam.DoFn.StateParam(SAVED)):
        _, latest = element
        known = saved.read()
        if known is None:  # first window of this job: start from the file
            known = load_feed_states(self.output)
        written = save_feed_health(self.output, known, list(latest.values()),
                                   **commit_guard(self.fence, "the feed state"))
        saved.write(written)
        _count("feed_health_saved", len(latest))
        yield len(latest)


class _FirstOnly(beam.DoFn):
    """Keyed: the first element of a key goes through ``self.check``; the key is forgotten
    ``ttl_s`` after it was last seen (an event-time timer, reset on every sighting)."""

    SEEN = ReadModifyWriteStateSpec("seen", BooleanCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)
    what = "key"

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s

    def check(self, key, value, prior):
        raise NotImplementedError

    def process(self, element, prior, timestamp=beam.DoFn.TimestampParam,
                seen=beam.DoFn.StateParam(SEEN), expiry=beam.DoFn.TimerParam(EXPIRY)):
        key, value = element
        expiry.set(timestamp + Duration.of(self.ttl_s))
        if seen.read():
            _count(f"{self.what}.repeat")
            return
        seen.write(True)
        yield from self.check(key, value, prior)

    @on_timer(EXPIRY)
    def expire(self, seen=beam.DoFn.StateParam(SEEN)):
        _count(f"{self.what}.expired")
        seen.clear()


class FirstSighting(_FirstOnly):
    """(article id, Candidate) → the candidate, once per URL (and never one already stored)."""

    what = "url"

    def __init__(self, ttl_s: float, run_id: str | None = None):
        super().__init__(ttl_s)
        self.skip = steps.SkipStored(run_id)

    def check(self, key, c, prior):
        yield from self.skip.process(c, prior)


class FirstContent(_FirstOnly):
    """(content hash, Article) → the article, once per normalized content (never stored content)."""

    what = "content"

    def __init__(self, ttl_s: float, run_id: str | None = None):
        super().__init__(ttl_s)
        self.drop = steps.DropExactDuplicates(run_id)

    def check(self, key, a, prior):
        yield from self.drop.process((key, [a]), prior)


class NearDuplicates(beam.DoFn):
    """(NEAR_KEY, Article) → the article with ``duplicate_of`` set when it is a near-duplicate of
    one seen within ``window_s`` (stored or streamed). The entries live in a bag; this worker keeps
    an index built from them, rebuilt whenever the bag changed elsewhere (generation check)."""

    ENTRIES = BagStateSpec("entries", PickleCoder())
    GENERATION = ReadModifyWriteStateSpec("generation", PickleCoder())  # (token, entries added)
    PRUNE = TimerSpec("prune", TimeDomain.WATERMARK)
    PRUNE_SET = ReadModifyWriteStateSpec("prune_set", BooleanCoder())

    def __init__(self, config: NearDupConfig, window_s: float, prune_every_s: float | None = None):
        self.config = config
        self.window_s = window_s
        self.prune_every_s = prune_every_s or max(1.0, min(window_s / 2, 3600.0))

    def setup(self):
        self._cache: tuple | None = None  # (generation, NearDupIndex)

    def _index(self, generation, entries) -> NearDupIndex:
        if self._cache is not None and self._cache[0] == generation:
            return self._cache[1]
        index = NearDupIndex(self.config)
        index.load(e for e, _ in sorted(entries, key=lambda r: (r[1], r[0].article_id)))
        index.set_boilerplate(boilerplate_of(index, []))
        _count("near.index_rebuilt")
        return index

    def process(self, element, prior, timestamp=beam.DoFn.TimestampParam,
                entries=beam.DoFn.StateParam(ENTRIES), generation=beam.DoFn.StateParam(GENERATION),
                prune=beam.DoFn.TimerParam(PRUNE), prune_set=beam.DoFn.StateParam(PRUNE_SET)):
        _, a = element
        gen = generation.read()
        if gen is None:  # first article of the job: seed with the committed files' index
            cutoff = _utc(timestamp).timestamp() - self.window_s
            for row in prior.recent:
                if row[1].timestamp() >= cutoff:
                    entries.add(row)
            gen = (uuid.uuid4().hex, 0)
        index = self._index(gen, entries.read())
        item = steps.near_duplicate_key(a, self.config)
        root = index.query(item.signature, item.size, shingles=item.shingles, source_id=item.source_id, when=item.when)
        dup = root if root is not None and root != a.article_id else None
        index.add(a.article_id, item.signature, item.size, root=dup, shingles=item.shingles, source_id=item.source_id,
                  when=item.when)
        entries.add((IndexEntry(a.article_id, dup or a.article_id, item.signature, item.size, item.shingles,
                                item.source_id, item.when), a.fetched_at))
        gen = (gen[0], gen[1] + 1)
        generation.write(gen)
        self._cache = (gen, index)
        if not prune_set.read():
            prune.set(Timestamp.of(max(a.fetched_at.timestamp() + self.window_s,
                                       timestamp.micros / 1e6 + self.prune_every_s)))
            prune_set.write(True)
        yield steps.mark_near_duplicate(a, {a.article_id: dup} if dup else {})

    @on_timer(PRUNE)
    def expire(self, fired=beam.DoFn.TimestampParam, entries=beam.DoFn.StateParam(ENTRIES),
               generation=beam.DoFn.StateParam(GENERATION), prune=beam.DoFn.TimerParam(PRUNE),
               prune_set=beam.DoFn.StateParam(PRUNE_SET)):
        cutoff = _utc(fired).timestamp() - self.window_s
        rows = list(entries.read())
        kept = [r for r in rows if r[1].timestamp() >= cutoff]
        _count("near.expired", len(rows) - len(kept))
        entries.clear()
        for r in kept:
            entries.add(r)
        generation.write((uuid.uuid4().hex, 0))  # every worker rebuilds its index from the bag
        self._cache = None
        if kept:  # next when the oldest kept entry leaves the window, at most every prune_every_s
            oldest = min(r[1].timestamp() for r in kept)
            prune.set(Timestamp.of(max(oldest + self.window_s, fired.micros / 1e6 + self.prune_every_s)))
        else:
            prune_set.clear()


class _WindowedGroups(_WriteGroups):
    """Like the batch writer, but each window pane gets its own file names: a late pane adds a
    file instead of replacing the on-time one, and a retried pane rewrites the same names."""

    def process(self, element, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        start = _utc(win.start) if hasattr(win, "start") else datetime(1970, 1, 1, tzinfo=timezone.utc)
        yield from self.write_group(element, f"{self.run_id}-w{start:%Y%m%dT%H%M%S}-p{pane.index}")


def _windowed(w: _WriteGroups) -> _WindowedGroups:
    return _WindowedGroups(w.root, w.schema, w.run_id, w.id_column, w.to_row, w.max_rows, w.counter, w.fence)


class WriteWindowedArticles(WriteArticles):
    """Windowed articles → one set of atomic files per window pane, each row under its own
    ``dt=`` (its fetch day), so a late article lands in the partition of the day it was fetched."""

    def __init__(self, output: str, run_id: str, max_rows: int | None = None, fence: Fence | None = None):
        super().__init__(output, run_id, *(() if max_rows is None else (max_rows,)), fence=fence)
        self.write = _windowed(self.write)


class WriteWindowedDeadLetters(WriteDeadLetters):
    def __init__(self, output: str, run_id: str, max_rows: int | None = None, fence: Fence | None = None):
        super().__init__(output, run_id, *(() if max_rows is None else (max_rows,)), fence=fence)
        self.write = _windowed(self.write)
