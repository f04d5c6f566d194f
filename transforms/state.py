"""What is already stored: the dedup state, derived from the committed articles themselves.

The seen index is read from the committed Parquet files under ``articles/`` and nothing else,
so it can never claim an article that is not in a committed file: a run killed at any point
and re-run neither loses nor duplicates rows.

Near-duplicate matching only looks back ``window_days`` (by ``fetched_at``); exact matching by
URL and content hash covers all history.

A compaction may swap a partition's files while the state is read (see
:mod:`akhbar.transforms.compact`); a read that straddled the swap could miss ids and make the run
fetch and write those articles again. So each folder is read under the lock that keeps the swap
out (:func:`akhbar.transforms.store.map_committed`).
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc

from akhbar.transforms import store
from akhbar.transforms.packedset import PackedSet
from akhbar.transforms.seen import EntryLog, FailureLog, SeenLog, Summary
from akhbar.transforms.dedup import (
    IndexEntry,
    MinHasher,
    NearDupConfig,
    NearDupIndex,
    index_from_entries,
    shingle_hashes,
)

MAX_PAGE_FAILURES = 3  # runs in which a page failed for a lasting reason before polls leave it out
# ... and how long it must have kept failing, from its first such failure to its latest: a page
# that a feed lists a few minutes before the site serves it (a 404 meanwhile, often cached by a
# CDN) is not given up by three polls that fall in those minutes
GIVE_UP_AFTER_HOURS = 1.0
PAGE_STAGES = frozenset({"fetch", "extract"})
BAD_LINK = ("poll", "bad_url")  # a feed entry's malformed link (its url: the link as written)
FAILURE_COLUMNS = ["url", "stage", "reason", "run_id", "feed_url", "time"]


@dataclass(frozen=True)
class PriorState:
    # a PackedSet (a frozenset in tests), but a running streaming job's own set, which grows as
    # its cycles write
    article_ids: AbstractSet[str] = frozenset()
    content_hashes: AbstractSet[str] = frozenset()
    # near-duplicate index entries of the articles fetched within the window, with fetched_at
    recent: tuple[tuple[IndexEntry, datetime], ...] = field(default=())
    # pages not stored that keep failing for a lasting reason (PageFailures)
    given_up: frozenset[str] = frozenset()

    def index(self, config: NearDupConfig) -> NearDupIndex:
        return index_from_entries(self.recent, config)


def load_prior(output: str, *, now: datetime | None = None, window_days: int = 30,
               config: NearDupConfig | None = None, failures: PageFailures | None = None,
               give_up_after_hours: float = GIVE_UP_AFTER_HOURS) -> PriorState:
    """Read the dedup state of ``output`` (a local folder or ``gs://`` prefix). ``failures``: the
    reader of the pages given up on to use (a streaming job's, which reads only new files later);
    without one, a reader with ``window_days`` and ``give_up_after_hours`` is made."""
    state = _read_prior(output, now=now, window_days=window_days, config=config)
    failures = failures or PageFailures(output, window_days, give_up_after_hours)
    given_up = failures.given_up(state.article_ids, now=now)
    # the logs' tables are gone, but Arrow's allocator keeps their memory for reuse (370 MB on a
    # million stored rows): the run has no use for it
    pa.default_memory_pool().release_unused()
    return dataclasses.replace(state, given_up=given_up)


class PageFailures:
    """Pages that keep failing, from the dead letters under ``OUTPUT/dead_letter/``.

    A feed lists an entry for hours or days; an entry whose page fails for a lasting reason (a
    404, robots.txt saying no, a page with no article text: see
    :func:`akhbar.schemas.reasons.is_lasting`) would be fetched again, and dead-lettered again, at
    every poll that finds the feed changed. Once its page has failed so in ``MAX_PAGE_FAILURES``
    runs within the window (the ``dt`` partitions of the last ``window_days`` days), the first
    and the latest of those failures at least ``after_hours`` apart, polls leave the entry out
    (``akhbar replay`` still takes it). An entry whose link is malformed (``bad_url`` at the poll
    stage) is dead-lettered again in the same way, and stops being so under the same rule.
    Failures of the moment (timeouts, 5xx, 429) never count: a site that is down for a while
    loses nothing.

    Runs are counted by ``run_id``, so a file read twice (before and after a compaction merged
    it) changes nothing. :meth:`given_up` reads only the files it has not read yet (a streaming
    job asks after every cycle), and takes those that an earlier run read from the failure log
    (:class:`akhbar.transforms.seen.FailureLog`), which it then updates unless ``write_log`` is
    False (``akhbar sources health`` and ``akhbar report`` write nothing).
    """

    def __init__(self, output: str, window_days: float, after_hours: float = GIVE_UP_AFTER_HOURS,
                 write_log: bool = True):
        self.output, self.root = output, store.join(output, "dead_letter")
        self.window_days = window_days
        self.after_us = round(after_hours * 3600e6)
        self.write_log = write_log  # False: read the failure log, but write nothing (health, report)
        # path -> (identity, [(page id, run, feed URL, time in µs since the epoch)])
        self._read: dict[str, tuple[tuple, list[tuple[str, str, str | None, int]]]] = {}

    def given_up(self, stored=frozenset(), *, now: datetime | None = None) -> frozenset[str]:
        """Ids of the pages to leave out now (those in ``stored`` are not named)."""
        return frozenset(self._given_up(stored, now))

    def given_up_by_feed(self, stored=frozenset(), *, now: datetime | None = None) -> dict[str, int]:
        """How many pages of each feed (URL) are left out now (``akhbar sources health``)."""
        counts: dict[str, int] = {}
        for feed in self._given_up(stored, now).values():
            if feed:
                counts[feed] = counts.get(feed, 0) + 1
        return counts

    def _given_up(self, stored, now: datetime | None) -> dict[str, str | None]:
        """Page id → the feed that listed it (at its latest failure), for the pages given up."""
        now = now or datetime.now(timezone.utc)
        first_day = (now - timedelta(days=self.window_days)).date()
        files = {path: ident for path, ident in store.snapshot(self.root).items()
                 if (folder_day(path) or date.max) >= first_day}  # a file outside a dt= folder is read
        for gone in set(self._read) - set(files):
            del self._read[gone]
        runs: dict[str, set[str]] = {}
        spans: dict[str, list[int]] = {}  # page id -> [first, latest] failure time
        feeds: dict[str, str] = {}
        new = [path for path, ident in sorted(files.items()) if self._read.get(path, (None,))[0] != ident]
        if new:
            log = FailureLog(self.output).read()

            def read(path: str) -> list[tuple[str, str, str | None, int]] | None:
                file, ident = store.relative(self.root, path), files[path]
                rows = log.lookup(file, ident)
                if rows is None:
                    rows = _failure_rows_or_none(path)
                    if rows is None:  # merged by a compaction since it was listed: read it next time
                        return None
                    log.add(file, ident, rows)
                return _lasting(rows, path)

            for path, failures in zip(new, store.map_files(read, new)):
                if failures is not None:
                    self._read[path] = (files[path], failures)
            if self.write_log:
                for path, ident in files.items():  # what the log keeps: the files of the window
                    log.lookup(store.relative(self.root, path), ident)
                log.save()
        for path in sorted(files):
            held = self._read.get(path)
            if held is None or held[0] != files[path]:
                continue
            for aid, run, feed, when in held[1]:
                runs.setdefault(aid, set()).add(run)
                span = spans.setdefault(aid, [when, when])
                span[0], span[1] = min(span[0], when), max(span[1], when)
                if feed:
                    feeds[aid] = feed  # files are read by day: the last one read is the latest
        return {aid: feeds.get(aid) for aid, seen in runs.items()
                if len(seen) >= MAX_PAGE_FAILURES and spans[aid][1] - spans[aid][0] >= self.after_us
                and aid not in stored}


def _failure_rows_or_none(path: str) -> list[tuple] | None:
    """The rows of a dead-letter file that name a URL, as :class:`FailureLog` keeps them; None if
    the file is gone (read it next time), none if it is damaged (its pages are simply tried
    again)."""
    try:
        t = store.read_table(path, columns=FAILURE_COLUMNS)
    except FileNotFoundError:
        return None
    except (store.UnreadableFile, pa.ArrowException):
        return []
    cols = [t.column(c).to_pylist() for c in FAILURE_COLUMNS[:-1]]
    # µs since the epoch, without making a datetime of each
    times = t.column("time").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return [row for row in zip(*cols, times) if row[0]]


def _lasting(rows: list[tuple], path: str) -> list[tuple[str, str, str | None, int]]:
    """(page id, run, feed URL, time in µs) of the failures among a dead-letter file's rows that
    count towards giving a page up."""
    from akhbar.schemas.reasons import is_lasting
    from akhbar.transforms.urls import article_id

    return [(article_id(url), run or path, feed, when or 0)
            for url, stage, reason, run, feed, when in rows
            if is_lasting(reason) and (stage in PAGE_STAGES or (stage, reason) == BAD_LINK)]


def stored_article_ids(output: str) -> AbstractSet[str]:
    """The ids of the committed articles (what ``akhbar sources health`` needs; a run reads them
    with the rest of :func:`load_prior`): from the seen log where it holds a file, else from the
    file's ``article_id`` column. Nothing is written: health only reads."""
    root = store.join(output, "articles")
    summaries = SeenLog(output).read()

    def read(path: str, ident: tuple) -> list[str]:
        if summaries.lookup(store.relative(root, path), ident) is not None:
            return []  # in the log: gathered below
        return store.read_table(path, columns=["article_id"]).column(0).to_pylist()

    read_ids = [file_ids for _, file_ids in store.map_committed(read, root)]
    return PackedSet.of(summaries.stored()[0], itertools.chain.from_iterable(read_ids))


def folder_day(path: str) -> date | None:
    """The day of the ``dt=YYYY-MM-DD`` folder a committed file is in; None outside one."""
    parts = [p for p in path.replace("\\", "/").split("/") if p.startswith("dt=")]
    try:
        return date.fromisoformat(parts[-1][3:]) if parts else None
    except ValueError:
        return None


def _entries_of_file(f, config: NearDupConfig) -> list[tuple[IndexEntry, datetime]]:
    """Index entries of every row of one articles file, computed from the stored bodies."""
    hasher = MinHasher(config)
    t = f.read(["article_id", "source_id", "fetched_at", "published_at", "duplicate_of", "body"])
    out = []
    for aid, source, fetched, published, dup, body in zip(*(t.column(c).to_pylist() for c in t.column_names)):
        hashes = shingle_hashes(body, config.shingle)
        out.append((IndexEntry(aid, dup or aid, hasher.signature_of(hashes), len(hashes), hashes, source,
                               published or fetched), fetched))
    return out


def _read_prior(output: str, *, now: datetime | None, window_days: int,
                config: NearDupConfig | None) -> PriorState:
    """Ids and hashes of every committed file; near-duplicate entries of the rows fetched within
    the window.

    What each file holds is kept in two logs (:mod:`akhbar.transforms.seen`): its ids, content
    hashes and newest fetch time under ``_state/seen/``, and, for a file with rows in the window,
    their near-duplicate entries (computed from the stored bodies) under ``_state/neardup/``. A
    file is opened only if a log it is needed in lacks it under its current identity: once,
    after it is committed. Both logs are derived from committed files only and used only for a
    file listed now with the same identity, so they can never claim an article that is not
    stored; a compacted (renamed) file is simply read again."""
    config = config or NearDupConfig()
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=window_days)
    root = store.join(output, "articles")
    summaries, windowed = SeenLog(output).read(), EntryLog(output, config, cutoff).read()
    ids: list[list[str]] = []
    hashes: list[list[str]] = []
    recent: list[tuple[IndexEntry, datetime]] = []

    def read(path: str, ident: tuple) -> tuple[list, list, list]:
        """(ids, content hashes, entries within the window) of one file."""
        file = store.relative(root, path)
        summary = summaries.lookup(file, ident)  # ids and hashes of a file in the log: see stored() below
        if summary is not None and (summary.newest is None or summary.newest < cutoff):
            return summary.ids, summary.hashes, []  # nothing of it in the window
        entries = windowed.lookup(file, ident) if summary is not None else None
        if entries is None:
            with store.open_parquet(path) as f:  # one open: every read sees the same file
                if summary is None:
                    t = f.read(["article_id", "content_hash", "fetched_at"])
                    summary = Summary(t.column("article_id").to_pylist(), t.column("content_hash").to_pylist(),
                                      pc.max(t.column("fetched_at")).as_py())
                    summaries.add(file, ident, summary)
                    if summary.newest is None or summary.newest < cutoff:
                        return summary.ids, summary.hashes, []
                    entries = windowed.lookup(file, ident)
                if entries is None:
                    entries = _entries_of_file(f, config)
                    windowed.add(file, ident, entries)
        return summary.ids, summary.hashes, [(e, fetched) for e, fetched in entries if fetched >= cutoff]

    for _, (file_ids, file_hashes, entries) in store.map_committed(read, root):
        ids.append(file_ids)
        hashes.append(file_hashes)
        recent.extend(entries)
    logged_ids, logged_hashes = summaries.stored()
    stored_ids = PackedSet.of(logged_ids, itertools.chain.from_iterable(ids))
    stored_hashes = PackedSet.of(logged_hashes, itertools.chain.from_iterable(hashes))
    summaries.save()
    windowed.save()
    recent = rerooted(recent, stored_ids)
    recent.sort(key=lambda r: (r[1], r[0].article_id))
    return PriorState(stored_ids, stored_hashes, tuple(recent))


def rerooted(recent: list[tuple[IndexEntry, datetime]], stored_ids: set[str]) -> list[tuple[IndexEntry, datetime]]:
    """``recent`` with every cluster whose root is not stored any more given a stored root.

    A stored copy names its cluster's first-seen article in ``duplicate_of``; if that article
    was deleted by hand afterwards (a takedown, a row removed from its file), a later copy
    matched to the cluster would name an article that does not exist. So a missing root is
    replaced by the first-seen copy of its cluster that is still stored and in the window
    (earliest publication, then fetch, then id, as the near-duplicate pass orders articles); that
    copy becomes the root of its own entry. Stored rows are not rewritten: the copies already
    written keep the old value (see docs/dedup.md for the query that finds them).
    """
    orphans: dict[str, list[tuple[IndexEntry, datetime]]] = {}
    for e, fetched in recent:
        if e.root != e.article_id and e.root not in stored_ids:
            orphans.setdefault(e.root, []).append((e, fetched))
    if not orphans:
        return recent
    new_root = {}
    for old, members in orphans.items():
        first, _ = min(members, key=lambda r: (r[0].when or r[1], r[1], r[0].article_id))
        new_root[old] = first.article_id
    return [(dataclasses.replace(e, root=new_root[e.root]) if e.root in new_root else e, fetched)
            for e, fetched in recent]
