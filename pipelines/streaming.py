"""Streaming mode: wiring only. Every step lives in ``akhbar.transforms``.

Two ways to run ``akhbar run --mode streaming``, chosen by :func:`plan`:

* **streaming graph** (:func:`build_streaming_pipeline`) on a runner that executes unbounded
  pipelines: Dataflow, Flink/Spark through the portable runner, or Prism when its binary is
  available (``--prism_location`` or the SDK's cache). ``PeriodicImpulse`` drives polling; the
  batch steps run unchanged; dedup state is keyed state with expiry timers; output is windowed.
* **bounded cycles** (:func:`run_cycles`) on the local runner, which cannot run an unbounded
  polling pipeline: each source is polled on its own clock in a background thread (a *gather*,
  :mod:`akhbar.transforms.gather`: its feeds and its new pages), and each cycle runs the rest of
  the batch graph (:func:`akhbar.pipelines.batch.build_pipeline`) in this process over what the
  gathers have brought; state persists between cycles under ``_state/`` (schedule, feed
  validators, the seen index of committed files).

Both stop cleanly on ``--duration``, SIGINT and SIGTERM: what was polled (the gathers under way
included), or the open windows, is written before the process exits.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import queue
import shutil
import signal
import statistics
import sys
import threading
import time
import typing
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone

import apache_beam as beam
from akhbar.pipelines.batch import (
    RunConfig,
    build_pipeline,
    cancel_job,
    describes_only,
    fetch_extract_classify,
    lost_lock_ends_job,
    new_run_id,
    stored_state,
)
from akhbar.transforms import steps
from akhbar.transforms import streaming as st
from akhbar.transforms.feedstate import load_feed_states, save_feed_states
from akhbar.transforms.gather import (
    Gathered,
    Gatherer,
    Gathers,
    fill_inbox,
    new_inbox,
    remove_inbox,
    remove_stale_inboxes,
)
from akhbar.transforms.outputlock import LeaseLost, OutputLock, OutputLocked, commit_guard, writing
from akhbar.transforms.packedset import GrowingSet
from akhbar.transforms.schedule import (
    after_poll,
    bounds,
    due_sources,
    initial_schedule,
    load_schedule,
    save_schedule,
)
from akhbar.transforms.state import PageFailures, PriorState, load_prior
from apache_beam.options.pipeline_options import (
    PipelineOptions,
    PrismRunnerOptions,
    StandardOptions,
)
from apache_beam.transforms import window
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.trigger import AccumulationMode, AfterCount, AfterWatermark
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

# runners that execute an unbounded pipeline (lower-case class names)
STREAMING_RUNNERS = {"dataflowrunner", "testdataflowrunner", "portablerunner", "flinkrunner", "sparkrunner",
                     "prismrunner"}
LOCAL_RUNNERS = {"", "directrunner", "fnapirunner", "bundlebaseddirectrunner", "swappingrunner"}
PRISM_CACHE = os.path.expanduser("~/.apache_beam/cache/prism/bin")
MAX_FAILED_CYCLES = 3
EXIT_LOCKED = 2  # the CLI's exit code for "nothing was run": another run writes to the output
RECENT_CYCLES = 1000
KEYED = typing.Tuple[str, typing.Any]  # keys of the stateful steps are strings (a deterministic coder)

LOCAL_NOTICE = ("akhbar: streaming mode runs as bounded cycles on the local runner: each source is polled in "
                "the background on its own interval (adapted to how busy it is), and each cycle writes what the "
                "polls have brought; state is kept under _state/ between cycles. Why: Beam's local runners cannot run an unbounded "
                "polling pipeline ({why}). For a true streaming job give --runner DataflowRunner (or "
                "PortableRunner, FlinkRunner, SparkRunner), or a Prism binary with --prism_location PATH.")
NO_PRISM = ("no Prism binary given with --prism_location or in ~/.apache_beam/cache/prism/bin, and the "
            "in-process runner emits nothing after a grouping until its source ends")


@dataclass(frozen=True)
class StreamSettings:
    """Streaming-only settings (the rest is the batch :class:`RunConfig`)."""

    duration_s: float | None = None  # stop cleanly after this long; None = until stopped
    window_s: float = 60.0  # streaming graph: output window (one set of files per window)
    allowed_lateness_s: float = 86400.0  # streaming graph: late articles still written (to their own dt=)
    state_ttl_s: float = 7 * 86400.0  # streaming graph: URL/content state kept this long after last seen
    tick_s: float | None = None  # streaming graph: impulse interval; default: the smallest interval bound
    compact_every_s: float | None = 600.0  # cycles on local output: merge small files this often (None: never)
    compact_min_files: int = 10  # …in partitions with at least this many small files
    # cycles: what a poll brought is written once every poll still under way has run this long
    # (sources polled together are written together; a poll that takes longer is not waited for)
    gather_wait_s: float = 2.0


@dataclass(frozen=True)
class Plan:
    kind: str  # "graph" (a streaming runner) or "cycles" (bounded cycles on the local runner)
    beam_args: tuple[str, ...]
    why: str


def cached_prism() -> str | None:
    """A Prism binary for this Beam version in the SDK's cache, if one was downloaded before."""
    pattern = os.path.join(PRISM_CACHE, f"apache_beam-v{beam.__version__}-prism-*")
    for path in sorted(glob.glob(pattern)):
        if not path.endswith(".zip") and os.access(path, os.X_OK):
            return path
    return None


def _runner_name(runner) -> str:
    if runner is None:
        return ""
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1].lower()


def plan(beam_args: list[str], prism_cache: Callable[[], str | None] = cached_prism) -> Plan:
    """Decide how ``--mode streaming`` runs with these Beam options."""
    opts = PipelineOptions(list(beam_args))
    name = _runner_name(opts.view_as(StandardOptions).runner)
    if name in STREAMING_RUNNERS:
        return Plan("graph", tuple(beam_args), f"--runner {opts.view_as(StandardOptions).runner} runs unbounded pipelines")
    if name not in LOCAL_RUNNERS:
        return Plan("cycles", tuple(beam_args), f"runner {name!r} is not known to run unbounded pipelines")
    # a cached Prism binary is used only when no runner was named: --runner DirectRunner means local cycles
    explicit = opts.view_as(StandardOptions).runner is not None
    prism = opts.view_as(PrismRunnerOptions).prism_location or (None if explicit else prism_cache())
    if prism:
        args = [a for a in beam_args if not a.startswith("--runner")]
        if not opts.view_as(PrismRunnerOptions).prism_location:
            args.append(f"--prism_location={prism}")
        return Plan("graph", tuple(args + ["--runner=PrismRunner"]), f"Prism binary {prism}")
    return Plan("cycles", tuple(a for a in beam_args if a != "--streaming"), NO_PRISM)


# --- stopping --------------------------------------------------------------------------------------

class Stopper:
    """``--duration`` and SIGINT/SIGTERM: the first signal asks for a clean stop (finish the cycle,
    write, exit 0); a second SIGINT interrupts at once. :meth:`wait` also ends at :meth:`nudge`
    (a poll has brought something)."""

    def __init__(self, duration_s: float | None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.deadline = None if duration_s is None else clock() + duration_s
        self.event = threading.Event()  # a stop was asked for
        self._wake = threading.Event()  # a stop was asked for, or something arrived
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self.clock()

    def stopping(self) -> bool:
        if not self.event.is_set() and self.deadline is not None and self.clock() >= self.deadline:
            self.reason = self.reason or "duration reached"
            self.event.set()
        return self.event.is_set()

    def stop(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()
        self._wake.set()

    def nudge(self) -> None:
        self._wake.set()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` at most: until the deadline, a stop, or a :meth:`nudge` (once
        stopping, only a nudge or the time ends it)."""
        left = None if self.event.is_set() else self.remaining()
        if self._wake.wait(max(0.0, min(seconds, left) if left is not None else seconds)):
            self._wake.clear()  # consumed; whoever set it is seen by the caller's next look around

    def _on_signal(self, signum, frame):
        name = signal.Signals(signum).name
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        print(f"akhbar: {name}: stopping after the current cycle and the polls under way (again: Ctrl-C "
              "interrupts at once)",
              file=sys.stderr, flush=True)
        self.stop(name)

    def __enter__(self) -> Stopper:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --- bounded cycles on the local runner ------------------------------------------------------------

@dataclass
class PreparedCycle:
    """A cycle's graph, built before its data is there: it reads what it writes from ``inbox``."""

    run_id: str
    pipeline: beam.Pipeline
    inbox: str


def prepare_cycle(cfg: RunConfig, beam_args: list[str] | tuple[str, ...]) -> PreparedCycle:
    """Build a cycle's batch graph (from the fetched pages on) on the in-process runner."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    run_id = new_run_id()
    inbox = new_inbox(run_id)
    p = beam.Pipeline(runner=fn_runner.FnApiRunner(), options=PipelineOptions(list(beam_args)))
    build_pipeline(p, dataclasses.replace(cfg, run_id=run_id), inbox)
    return PreparedCycle(run_id, p, inbox)


def run_cycle(prepared: PreparedCycle, batch: list[Gathered]):
    """Run a prepared cycle over what ``batch`` brought; Beam's result."""
    try:
        fill_inbox(prepared.inbox, batch)
        result = prepared.pipeline.run()
        result.wait_until_finish()
        return result
    finally:
        remove_inbox(prepared.inbox)


def discard_cycle(prepared: PreparedCycle) -> None:
    """A prepared cycle that will not run: its inbox and Beam's temporary folder go."""
    remove_inbox(prepared.inbox)
    shutil.rmtree(prepared.pipeline.local_tempdir, ignore_errors=True)


class CycleThread:
    """Cycles, one at a time, in a thread of their own. The next cycle's graph is built as soon as
    the last cycle is done (about a second), so what arrives waits only for the graph to run.

    ``write(batch, take_graph)`` commits a batch; ``take_graph()`` hands it the prepared graph (or
    raises why it could not be built; the next one is built afterwards). ``then()`` is called
    after each batch."""

    def __init__(self, prepare: Callable[[], PreparedCycle], write: Callable, then: Callable[[], None]):
        self._prepare, self._write, self._then = prepare, write, then
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="akhbar-cycles", daemon=True)
        self._thread.start()

    def submit(self, batch: list[Gathered]) -> Future:
        outcome: Future = Future()
        self._queue.put((batch, outcome))
        return outcome

    def close(self, timeout: float = 60.0) -> None:
        """No more batches: the graph built ahead is discarded, the thread ends."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        built: PreparedCycle | BaseException | None = None

        def take_graph() -> PreparedCycle:
            nonlocal built
            graph, built = built, None
            if isinstance(graph, BaseException):
                raise graph
            return graph

        while True:
            if built is None:
                try:
                    built = self._prepare()
                except Exception as e:  # noqa: BLE001 - raised in the cycle that needs the graph
                    built = e
            item = self._queue.get()
            if item is None:
                break
            batch, outcome = item
            try:
                outcome.set_result(self._write(batch, take_graph))
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                outcome.set_exception(e)
            finally:
                self._then()
        if isinstance(built, PreparedCycle):
            discard_cycle(built)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_cycles(cfg: RunConfig, beam_args, settings: StreamSettings, *, why: str = NO_PRISM,
               quiet: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Poll each source on its own clock and write what the polls bring, cycle after cycle, until
    ``settings.duration_s`` passes or a signal arrives; return the stream's summary (also written
    to ``_reports/run-stream-<id>.json`` after every cycle).

    The output's lock is held from the first cycle to the last (:class:`OutputLocked` at once if
    another run writes there); :class:`LeaseLost` ends the stream, before its next commit, if the
    lock was lost meanwhile."""
    with writing(cfg.output, cfg.run_id, "streaming") as lock:
        cfg = dataclasses.replace(cfg, fence=lock.fence())
        return _cycles(cfg, beam_args, settings, why=why, quiet=quiet, log=log, lock=lock)


def _cycles(cfg: RunConfig, beam_args, settings: StreamSettings, *, why: str, quiet: bool,
            log: Callable[[str], None] | None, lock: OutputLock) -> dict:
    """The driver. Each due source is polled in the background (:class:`~akhbar.transforms.gather.Gathers`),
    cycles running or not; a source is not polled again before what its last poll brought is
    written. Whenever polls have brought something, no cycle runs and every poll still under way
    has run ``gather_wait_s``, a cycle (in a thread of its own) writes it: the batch graph from the
    fetched pages on, feed states committed after the rows; polls that brought neither pages nor
    dead letters only have their feed states saved (no graph). Then, in this thread, the schedule
    counts each source's next poll from the start of the one just written, and the report is
    rewritten; compaction runs here too, between cycles."""
    from akhbar.pipelines.summary import beam_counters, run_article_ids, summarize, write_report

    log = log or (lambda text: print(text, flush=True))
    if not quiet:
        print(LOCAL_NOTICE.format(why=why), file=sys.stderr, flush=True)
    sources = {s.id: s for s in cfg.sources if s.enabled}
    stream_id = cfg.run_id
    started = datetime.now(timezone.utc)
    schedule = initial_schedule(list(sources.values()), started, load_schedule(cfg.output))
    totals = {"run_id": stream_id, "mode": "streaming-cycles", "output": cfg.output, "started_at": started.isoformat(),
              "cycles": 0, "failed_cycles": 0, "polls": 0, "articles_written": 0, "dead_letters": 0,
              "per_source": {}, "cycle_seconds": [], "partitions_compacted": 0, "stopped_by": None}
    gatherer = Gatherer(cfg.fetch, cfg.allow_private_hosts, cfg.fetch_concurrency, sources, cfg.ignore_feed_backoff)
    remove_stale_inboxes()  # a killed job's, with the pages of its last cycle
    gatherer.setup()
    failures = 0
    hold_until = 0.0  # after a failed cycle: nothing new is started before this (monotonic)
    # ids of the committed articles, their pages not fetched: one set, grown after each cycle, that
    # the gathers under way read too (a page written since their poll began is not fetched)
    stored: GrowingSet | None = None
    failing = PageFailures(cfg.output, cfg.dedup_window_days, cfg.give_up_after_hours)
    given_up: frozenset[str] = frozenset()  # pages that keep failing: not fetched either
    busy: set[str] = set()  # sources polled and not yet written
    last_compaction = time.monotonic()

    def next_due() -> float | None:
        """Seconds until the next source that is not busy is due (None: every source is busy)."""
        waiting = [e.next_due for sid, e in schedule.items() if sid not in busy]
        return (min(waiting) - datetime.now(timezone.utc)).total_seconds() if waiting else None

    def write(batch: list[Gathered], take_graph: Callable[[], PreparedCycle]
              ) -> tuple[str | None, dict | None, frozenset[str], float]:
        """Commit what ``batch`` brought (in the cycles' thread); the cycle's run id and summary
        (None: no graph was run), the ids of the rows written, and the seconds its graph ran."""
        if not any(g.pages or g.dead for g in batch):  # nothing to write: the feed states alone
            save_feed_states(cfg.output, load_feed_states(cfg.output), [s for g in batch for s in g.feed_states],
                             **commit_guard(cfg.fence, "the feed state"))
            return None, None, frozenset(), 0.0
        lock.check("a cycle")  # before the graph is taken: one not run is discarded with the thread
        prepared = take_graph()
        now = datetime.now(timezone.utc)
        t0 = time.monotonic()
        with lost_lock_ends_job(lock):
            result = run_cycle(prepared, batch)
        seconds = time.monotonic() - t0
        summary = summarize(cfg.output, prepared.run_id, beam_counters(result), now)
        return prepared.run_id, summary, run_article_ids(cfg.output, prepared.run_id), seconds

    def written(batch: list[Gathered], run_id: str | None, summary: dict | None, ids: frozenset[str],
                seconds: float) -> None:
        """After a cycle: the schedule, the totals, the report, compaction (in this thread)."""
        nonlocal given_up, last_compaction, settings
        stored.update(ids)  # before the batch's claims are released (see Gatherer)
        if summary is not None and summary["dead_letters"]:
            try:
                given_up = failing.given_up(stored)  # reads this cycle's dead-letter files
            except (OSError, ValueError) as e:  # the cycle is written; a later one with dead letters reads again
                log(f"akhbar: pages given up on not updated: {type(e).__name__}: {e}")
        for g in batch:
            new = summary["per_source"].get(g.source_id, 0) if summary else 0
            schedule[g.source_id] = after_poll(schedule[g.source_id], sources[g.source_id].poll_interval_s,
                                               g.started, new)
            totals["per_source"][g.source_id] = totals["per_source"].get(g.source_id, 0) + new
            busy.discard(g.source_id)
            gatherer.release(g.source_id)
        save_schedule(cfg.output, schedule, {"stream_run_id": stream_id}, **commit_guard(cfg.fence, "the schedule"))
        totals["polls"] += len(batch)
        if summary is not None:
            totals["cycles"] += 1
            totals["articles_written"] += summary["articles_written"]
            totals["dead_letters"] += summary["dead_letters"]
            totals["cycle_seconds"].append(round(seconds, 3))
            del totals["cycle_seconds"][:-RECENT_CYCLES]  # timing figures over the recent cycles only
        if settings.compact_every_s and time.monotonic() - last_compaction >= settings.compact_every_s:
            last_compaction = time.monotonic()
            lock.check("a compaction")
            done = _compact(cfg.output, settings.compact_min_files, log)
            if done is None:
                settings = dataclasses.replace(settings, compact_every_s=None)
            else:
                totals["partitions_compacted"] += done
        _write_stream_report(cfg.output, totals, write_report)
        if not quiet:
            polled = ", ".join(g.source_id for g in batch)
            nxt = next_due()
            when = f"next poll in {max(0.0, nxt):.0f} s" if nxt is not None else "every source is being polled"
            if summary is None:
                log(f"akhbar: polled {polled}: nothing new; {when}")
            else:
                log(f"akhbar: cycle {totals['cycles']} ({run_id}): polled {polled}: {summary['articles_written']} "
                    f"rows, {summary['dead_letters']} dead letters in {seconds:.1f} s; {when}")

    with Stopper(settings.duration_s) as stopper, contextlib.ExitStack() as running:
        running.callback(gatherer.teardown)
        gathers = Gathers(gatherer, stopper.nudge)
        cycles = CycleThread(lambda: prepare_cycle(cfg, beam_args), write, stopper.nudge)
        running.callback(cycles.close)  # also when LeaseLost ends the stream
        cycle: tuple[list[Gathered], Future] | None = None  # the batch being written, and its outcome
        while True:
            stopping = stopper.stopping()
            batch: list[Gathered] = []
            try:
                if cycle is not None and cycle[1].done():
                    batch, outcome = cycle
                    cycle = None
                    written(batch, *outcome.result())  # the cycle's exception, if it failed
                    failures = 0
                    continue
                if stopping and cycle is None and not gathers.running() and not gathers.arrived():
                    break
                left = hold_until - time.monotonic()
                if left > 0:
                    if stopping:
                        break  # what is pending is not committed: a restart polls it again
                    stopper.wait(left)
                    continue
                if stored is None:
                    prior = load_prior(cfg.output, window_days=cfg.dedup_window_days, config=cfg.near,
                                       failures=failing)
                    stored, given_up = GrowingSet(prior.article_ids), prior.given_up
                now = datetime.now(timezone.utc)
                due = [] if stopping else [sid for sid in due_sources(schedule, now) if sid not in busy]
                if due:
                    states = load_feed_states(cfg.output)
                    for sid in due:
                        busy.add(sid)
                        gathers.start(sources[sid], states, PriorState(stored, given_up=given_up), now)
                if cycle is None:
                    batch = gathers.take(settings.gather_wait_s)
                    if batch:
                        cycle = (batch, cycles.submit(batch))
                        batch = []
                        continue
            except LeaseLost:
                raise  # the stream ends: nothing more may be committed
            except Exception as e:  # noqa: BLE001 - logged; nothing of the batch was committed but
                # what its cycle wrote, so its sources are simply polled again
                for g in batch:
                    busy.discard(g.source_id)
                    gatherer.release(g.source_id)
                failures += 1
                totals["failed_cycles"] += 1
                log(f"akhbar: cycle failed: {type(e).__name__}: {e}")
                if failures >= MAX_FAILED_CYCLES:
                    totals["stopped_by"] = f"{failures} failed cycles in a row"
                    break
                hold_until = time.monotonic() + min(60.0, 5.0 * 2 ** failures)
                continue
            # nothing to do now: sleep until a source is due, a poll brings something, the cycle
            # ends, or what has arrived has waited long enough for the polls still under way
            waits = [60.0]
            nxt = None if stopping else next_due()
            if nxt is not None:
                waits.append(nxt)
            ready = None if cycle is not None else gathers.ready_at(settings.gather_wait_s)
            if ready is not None:
                waits.append(ready - time.monotonic())
            stopper.wait(max(0.01, min(waits)))
        if cycle is not None:  # stopped (failures) while a cycle runs: it holds the output, let it end
            try:
                written(cycle[0], *cycle[1].result())
            except LeaseLost:
                raise
            except Exception as e:  # noqa: BLE001 - logged; its sources are polled again at the next start
                totals["failed_cycles"] += 1
                log(f"akhbar: cycle failed: {type(e).__name__}: {e}")
        totals["stopped_by"] = totals["stopped_by"] or stopper.reason
    totals["finished_at"] = datetime.now(timezone.utc).isoformat()
    lock.check("the stream report")
    report = _write_stream_report(cfg.output, totals, write_report)
    if not quiet:
        secs = totals["cycle_seconds"]
        print(f"akhbar: streaming stopped ({totals['stopped_by']}): {totals['cycles']} cycles, "
              f"{totals['articles_written']} article rows, {totals['dead_letters']} dead letters; cycle time "
              f"p50 {_percentile(secs, 0.5) or 0:.1f} s, max {max(secs, default=0):.1f} s\n  report: {report}",
              flush=True)
    return totals


def _compact(output: str, min_files: int, log: Callable[[str], None]) -> int | None:
    """Merge the small files the cycles wrote (each cycle reads every committed file's ids, so the
    file count must stay bounded); readers keep reading (see transforms/compact.py). Returns the
    partitions compacted, or None when this output cannot be compacted (``gs://``)."""
    from akhbar.transforms.compact import CompactionUnsupported, compact

    try:
        reports = compact(output, min_files=min_files)
    except CompactionUnsupported as e:
        log(f"akhbar: not compacting between cycles: {e}")
        return None
    except Exception as e:  # noqa: BLE001 - a failed compaction loses nothing; the next one tries again
        log(f"akhbar: compaction between cycles failed: {type(e).__name__}: {e}")
        return 0
    return sum(r.status == "compacted" for r in reports)


def _write_stream_report(output: str, totals: dict, write_report) -> str:
    secs = totals["cycle_seconds"]
    doc = {**totals, "cycle_seconds": {"n": len(secs), "p50": _percentile(secs, 0.5), "p95": _percentile(secs, 0.95),
                                       "max": max(secs, default=None),
                                       "mean": round(statistics.fmean(secs), 3) if secs else None}}
    return write_report(output, {**doc, "run_id": f"stream-{totals['run_id']}"})


# --- the streaming graph ---------------------------------------------------------------------------

def default_tick(cfg: RunConfig) -> float:
    """How often the impulse fires: often enough for the busiest allowed interval (at most a minute)."""
    lows = [bounds(s.poll_interval_s)[0] for s in cfg.sources if s.enabled]
    return max(1.0, min([60.0, *lows]))


def build_streaming_pipeline(p: beam.Pipeline, cfg: RunConfig, settings: StreamSettings,
                             start: Timestamp | None = None, ticks: beam.PCollection | None = None
                             ) -> dict[str, beam.PCollection]:
    """Add the unbounded graph to ``p``. ``ticks`` replaces the impulse (tests feed a TestStream)."""
    start = start or Timestamp.now()
    stop = MAX_TIMESTAMP if settings.duration_s is None else start + settings.duration_s
    feeds = [(s, f) for s in cfg.sources if s.enabled for f in s.feeds]
    prior, feed_states = stored_state(p, cfg)
    if ticks is None:
        ticks = p | "Ticks" >> PeriodicImpulse(start_timestamp=start, stop_timestamp=stop,
                                               fire_interval=settings.tick_s or default_tick(cfg))
    polled = (
        ticks
        | "EveryFeed" >> beam.FlatMap(lambda _, feeds: [(f, (s, f)) for s, f in feeds], feeds).with_output_types(KEYED)
        | "PollWhenDue" >> beam.ParDo(st.PollWhenDue(cfg.fetch, cfg.allow_private_hosts, cfg.run_id,
                                                      cfg.ignore_feed_backoff), feed_states, prior)
        .with_outputs(steps.DEAD, steps.FEED_STATE, main="candidates")
    )
    _ = (
        polled[steps.FEED_STATE]
        | "HealthWindows" >> beam.WindowInto(window.FixedWindows(settings.window_s))
        | "LatestPerFeed" >> beam.CombineGlobally(st.LatestFeedStates()).without_defaults()
        | "OneHealthKey" >> beam.Map(lambda states: (st.HEALTH_KEY, states)).with_output_types(KEYED)
        | "HealthGlobal" >> beam.WindowInto(window.GlobalWindows())
        | "SaveFeedHealth" >> beam.ParDo(st.SaveFeedHealth(cfg.output, cfg.fence))
    )
    fresh = (
        polled.candidates
        | "ByURL" >> beam.Map(lambda c: (c.article_id, c)).with_output_types(KEYED)
        | "FirstSighting" >> beam.ParDo(st.FirstSighting(settings.state_ttl_s, cfg.run_id), prior)
        | "SpreadPages" >> beam.Reshuffle()
    )
    classified, stage_dead = fetch_extract_classify(fresh, cfg)
    articles = dedup_stream(classified, cfg, settings, prior)
    dead = (polled[steps.DEAD], *stage_dead) | "AllDead" >> beam.Flatten()
    written, dead_written = write_stream(articles, dead, cfg, settings)
    return {"articles": articles, "dead_letters": dead, "written": written, "dead_written": dead_written}


def dedup_stream(articles: beam.PCollection, cfg: RunConfig, settings: StreamSettings, prior) -> beam.PCollection:
    """Exact then near-duplicate checks in keyed state (global window, expiry timers), seeded
    from the committed files (``prior``). Each article's event time becomes its ``fetched_at``."""
    return (
        articles
        | "AtFetchTime" >> beam.Map(st.at_fetch_time)
        | "ByContent" >> beam.Map(lambda a: (a.content_hash, a)).with_output_types(KEYED)
        | "FirstContent" >> beam.ParDo(st.FirstContent(settings.state_ttl_s, cfg.run_id), prior)
        | "OneNearKey" >> beam.Map(lambda a: (st.NEAR_KEY, a)).with_output_types(KEYED)
        | "NearDuplicates" >> beam.ParDo(st.NearDuplicates(cfg.near, cfg.dedup_window_days * 86400.0), prior)
    )


def write_stream(articles, dead, cfg: RunConfig, settings: StreamSettings):
    """Fixed windows of event (fetch) time; every pane → atomic files under its rows' own ``dt=``."""
    def windowed(label: str, pcoll):
        return pcoll | label >> beam.WindowInto(
            window.FixedWindows(settings.window_s),
            trigger=AfterWatermark(late=AfterCount(1)),
            allowed_lateness=settings.allowed_lateness_s,
            accumulation_mode=AccumulationMode.DISCARDING,
        )

    written = (windowed("ArticleWindows", articles)
               | "WriteArticles" >> st.WriteWindowedArticles(cfg.output, cfg.run_id, fence=cfg.fence))
    dead_written = (
        windowed("DeadWindows", dead | "DeadAtTime" >> beam.Map(st.at_dead_letter_time))
        | "WriteDeadLetters" >> st.WriteWindowedDeadLetters(cfg.output, cfg.run_id, fence=cfg.fence)
    )
    return written, dead_written


def run_graph(cfg: RunConfig, beam_args, settings: StreamSettings, quiet: bool = False):
    """Run the streaming graph on a streaming runner until it ends (``--duration``) or is stopped.

    This process holds the output's lock while it waits for the job: the job is covered only as
    long as its launcher lives (see docs/streaming.md). If the lock is lost, the job's commits
    stop (each checks the lock), the job is cancelled and :class:`LeaseLost` is raised."""
    options = PipelineOptions(list(beam_args))
    options.view_as(StandardOptions).streaming = True
    with writing(cfg.output, cfg.run_id, "streaming") as lock:
        cfg = dataclasses.replace(cfg, fence=None if describes_only(beam_args) else lock.fence())
        p = beam.Pipeline(options=options)
        build_streaming_pipeline(p, cfg, settings)
        with lost_lock_ends_job(lock):
            result = p.run()
            lock.when_lost(lambda: cancel_job(result))
            if not quiet:
                print(f"akhbar: streaming job {cfg.run_id} started on {options.view_as(StandardOptions).runner}",
                      flush=True)
            try:
                result.wait_until_finish()
            except KeyboardInterrupt:
                print("akhbar: interrupted: cancelling the job (on Dataflow prefer `gcloud dataflow jobs drain`)",
                      file=sys.stderr)
                result.cancel()
        lock.check()
    return result


def run_streaming(cfg: RunConfig, beam_args, args) -> int:
    """``akhbar run --mode streaming``: pick the way to run, run until stopped; the exit code."""
    settings = StreamSettings(duration_s=args.duration, window_s=args.window, state_ttl_s=args.state_ttl,
                              compact_every_s=args.compact_every or None)
    how = plan(list(beam_args))
    if how.kind == "graph":
        if not args.quiet:
            print(f"akhbar: streaming mode runs the streaming graph ({how.why})", file=sys.stderr, flush=True)
        try:
            run_graph(cfg, how.beam_args, settings, quiet=args.quiet)
        except OutputLocked as e:
            print(f"akhbar: {e}", file=sys.stderr)
            return EXIT_LOCKED
        except LeaseLost as e:
            print(f"akhbar: streaming job {e}", file=sys.stderr)
            return 1
        except Exception as e:  # noqa: BLE001 - report and exit non-zero; Beam already logged the trace
            print(f"akhbar: streaming job {cfg.run_id} failed: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        return 0
    try:
        totals = run_cycles(cfg, how.beam_args, settings, why=how.why, quiet=args.quiet)
    except OutputLocked as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except LeaseLost as e:
        print(f"akhbar: streaming {e}", file=sys.stderr)
        return 1
    if args.quiet:
        print(cfg.output)
    return 1 if totals["stopped_by"] and "failed cycles" in totals["stopped_by"] else 0
