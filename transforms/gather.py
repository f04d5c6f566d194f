"""The network half of the local streaming cycles, one source at a time, in the background.

``akhbar run --mode streaming`` on the local runner (:func:`akhbar.pipelines.streaming.run_cycles`)
polls each source on its own clock. A *gather* is one such poll: the source's feeds through
:class:`~akhbar.transforms.steps.PollFeed`, then the pages of its entries that are not stored yet
through :meth:`~akhbar.transforms.steps.FetchPages.fetch_one`, in a thread of its own. What it
brings back (:class:`Gathered`: pages, dead letters, feed states) waits for the next cycle, which
runs the rest of the batch graph over everything that has arrived (extract, classify, dedup, write)
and commits the feed states after the rows. A slow feed, slow pages or a long ``Retry-After`` hold
up their own source's gather and nothing else.

Nothing here is committed: a gather that is lost (the job killed, its cycle failed) left the feed
state on file as it was, so the next poll brings its entries back.

A cycle's graph reads what it writes from an *inbox*, a local file the driver fills just before
running the graph (:func:`fill_inbox`, :class:`ReadInbox`), so the graph (about a second to build)
can be built while the sources are still being polled.

All gathers share one client for feeds and one for pages, with their per-host politeness and the
robots.txt cache, as the steps of one worker do.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import apache_beam as beam
from apache_beam import pvalue

from akhbar.schemas.records import DeadLetter, Page, Source
from akhbar.transforms import steps, tally
from akhbar.transforms.feedstate import FeedState
from akhbar.transforms.http import FetchConfig
from akhbar.transforms.state import PriorState


@dataclass(frozen=True)
class Gathered:
    """What one poll of one source brought: to be written by a cycle."""

    source_id: str
    started: datetime  # when the poll started: the schedule counts the next one from here
    pages: tuple[Page, ...] = ()
    dead: tuple[DeadLetter, ...] = ()
    feed_states: tuple[FeedState, ...] = ()


PAGES, DEAD, FEED_STATES = "pages", steps.DEAD, steps.FEED_STATE


def fill_inbox(path: str, batch: list[Gathered]) -> None:
    """Write what ``batch`` brought to the inbox file ``path`` (local, this job's own)."""
    items = ([page for g in batch for page in g.pages], [d for g in batch for d in g.dead],
             [s for g in batch for s in g.feed_states])
    with open(path, "wb") as f:
        pickle.dump(items, f, protocol=pickle.HIGHEST_PROTOCOL)


class ReadInbox(beam.DoFn):
    """inbox path → its pages (main output), dead letters (``dead_letter``, stamped with this
    cycle's run id) and feed states (``feed_state``)."""

    def __init__(self, run_id: str | None):
        self.run_id = run_id

    def process(self, path: str):
        with open(path, "rb") as f:
            pages, dead, states = pickle.load(f)
        yield from pages
        for d in dead:
            yield pvalue.TaggedOutput(DEAD, dataclasses.replace(d, run_id=self.run_id))
        for s in states:
            yield pvalue.TaggedOutput(FEED_STATES, s)


INBOX_PREFIX = "akhbar-cycle-"


def new_inbox(run_id: str) -> str:
    """A new, empty inbox file in the system's temporary folder, named after this process (see
    :func:`remove_stale_inboxes`) and the cycle's run id."""
    fd, path = tempfile.mkstemp(prefix=f"{INBOX_PREFIX}{os.getpid()}-{run_id}-", suffix=".pickle")
    os.close(fd)
    return path


def remove_inbox(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_stale_inboxes(folder: str | None = None) -> int:
    """Remove the inboxes left by jobs that were killed (their process is gone) from ``folder``
    (the temporary folder); the number removed. A job removes its own inboxes as it goes, but a
    SIGKILL leaves the one prepared for the next cycle, and one being run with its pages."""
    removed = 0
    for path in glob.glob(os.path.join(folder or tempfile.gettempdir(), f"{INBOX_PREFIX}*.pickle")):
        pid = os.path.basename(path)[len(INBOX_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue  # another job's (or not named by this version): left alone
        try:
            os.unlink(path)
            removed += 1
        except OSError:  # removed meanwhile, or another user's
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class Gatherer:
    """Polls one source and fetches its new pages (thread-safe: several sources at once).

    A page is fetched by one gather at a time: an entry that another source's gather has taken
    (its page fetched, not yet written) is left to it. A source's claims last until the driver has
    written what its gather brought (:meth:`release`); the driver adds the ids written to the set
    its gathers were given as ``prior.article_ids`` before it releases them, so a page written
    since a gather's poll began is not fetched again either."""

    def __init__(self, fetch_config: FetchConfig, allow_private: bool, fetch_concurrency: int,
                 sources: dict[str, Source], ignore_backoff: bool = False):
        self.poller = steps.PollFeed(fetch_config, allow_private, None, ignore_backoff)
        self.pages = steps.FetchPages(fetch_config, allow_private, fetch_concurrency, None, sources)
        self.concurrency = max(1, fetch_concurrency)
        self._lock = threading.Lock()
        self._claims: dict[str, str] = {}  # page id -> the source whose gather took it

    def release(self, source_id: str) -> None:
        """What ``source_id``'s gather brought is written (or lost): its pages may be taken again."""
        with self._lock:
            for aid in [aid for aid, owner in self._claims.items() if owner == source_id]:
                del self._claims[aid]

    def _claim(self, source_id: str, fresh: list, stored) -> list:
        """The candidates of ``fresh`` this gather fetches (the others are counted)."""
        mine = []
        with self._lock:
            for c in fresh:
                owner = self._claims.get(c.article_id)
                if c.article_id in stored:  # written since this gather sorted its entries
                    tally.count("dedup.already_stored")
                elif owner is not None and owner != source_id:
                    tally.count("dedup.being_fetched")  # another source's gather has it
                else:
                    self._claims[c.article_id] = source_id
                    mine.append(c)
        return mine

    def setup(self) -> None:
        self.poller.setup()
        self.pages.setup()

    def teardown(self) -> None:
        self.pages.teardown()

    def gather(self, source: Source, feed_states: dict[str, FeedState], prior: PriorState,
               started: datetime) -> Gathered:
        """Poll ``source``'s feeds (with ``feed_states``, the committed ones) and fetch the pages of
        entries that are neither stored (``prior.article_ids``) nor given up on (``prior.given_up``),
        one page per URL. The steps turn every failure of an element into a dead letter; anything
        else that goes wrong gives each feed of the source an ``internal_error`` dead letter and no
        feed state (the next poll starts over)."""
        try:
            return self._gather(source, feed_states, prior, started)
        except Exception as e:  # noqa: BLE001 - recorded as dead letters, not swallowed
            dead = tuple(self.poller.crashed(url=f, source_id=source.id, exc=e, feed_url=f).value
                         for f in source.feeds)
            return Gathered(source.id, started, dead=dead)

    def _gather(self, source: Source, feed_states: dict[str, FeedState], prior: PriorState,
                started: datetime) -> Gathered:
        candidates, dead, states = [], [], []
        stored = prior.article_ids
        for feed_url in source.feeds:
            # stored entries do not take the places of new ones under max_articles_per_poll
            for out in self.poller.process((source, feed_url), feed_states, prior):
                if not isinstance(out, pvalue.TaggedOutput):
                    candidates.append(out)
                elif out.tag == steps.FEED_STATE:
                    states.append(out.value)
                else:
                    dead.append(out.value)
        by_id: dict[str, list] = {}
        for c in candidates:
            if c.article_id in stored:
                tally.count("dedup.already_stored")  # as SkipStored counts it in batch runs
            else:
                by_id.setdefault(c.article_id, []).append(c)
        fresh = self._claim(source.id, [steps.earliest_candidate(cs) for cs in by_id.values()], stored)
        pages = []
        if fresh:
            with ThreadPoolExecutor(min(self.concurrency, len(fresh)),
                                    thread_name_prefix=f"akhbar-fetch-{source.id}") as pool:
                for outputs in pool.map(lambda c: list(self.pages.fetch_one(c)), fresh):
                    for out in outputs:
                        if isinstance(out, pvalue.TaggedOutput):
                            dead.append(out.value)
                        else:
                            pages.append(out)
        return Gathered(source.id, started, tuple(pages), tuple(dead), tuple(states))


class Gathers:
    """Gathers running in background threads, and what finished ones brought, in arrival order.
    ``on_arrival`` is called (from the gather's thread) after each arrival."""

    def __init__(self, gatherer: Gatherer, on_arrival: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic):
        self.gatherer = gatherer
        self.on_arrival = on_arrival
        self.clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}  # source id -> when (clock) its gather started
        self._arrived: list[Gathered] = []

    def start(self, source: Source, feed_states: dict[str, FeedState], prior: PriorState,
              started: datetime) -> None:
        with self._lock:
            if source.id in self._running:
                raise ValueError(f"source {source.id} is being polled already")
            self._running[source.id] = self.clock()
        threading.Thread(target=self._run, args=(source, feed_states, prior, started),
                         name=f"akhbar-gather-{source.id}", daemon=True).start()

    def _run(self, source: Source, feed_states, prior, started) -> None:
        gathered = self.gatherer.gather(source, feed_states, prior, started)
        with self._lock:
            del self._running[source.id]
            self._arrived.append(gathered)
        self.on_arrival()

    def running(self) -> set[str]:
        with self._lock:
            return set(self._running)

    def arrived(self) -> int:
        with self._lock:
            return len(self._arrived)

    def ready_at(self, wait_s: float) -> float | None:
        """When (``clock``) :meth:`take` hands over what has arrived: once every gather still
        running has run ``wait_s`` (gathers started together are written together; one that takes
        longer is not waited for). None while nothing has arrived."""
        with self._lock:
            if not self._arrived:
                return None
            return max([self.clock(), *(begun + wait_s for begun in self._running.values())])

    def take(self, wait_s: float) -> list[Gathered]:
        """What has arrived, if :meth:`ready_at` is now; else nothing."""
        ready = self.ready_at(wait_s)
        with self._lock:
            if ready is None or ready > self.clock():
                return []
            taken = list(self._arrived)
            self._arrived.clear()
            return taken
