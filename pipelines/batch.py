"""The batch pipeline: wiring only. Every step lives in ``akhbar.transforms``."""
from __future__ import annotations

import contextlib
import dataclasses
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import apache_beam as beam
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions
from apache_beam.pvalue import AsSingleton

from akhbar.schemas.records import Candidate, Source
from akhbar.transforms import steps
from akhbar.transforms.dedup import NearDupConfig
from akhbar.transforms.extract import MIN_BODY_WORDS
from akhbar.transforms.feedstate import load_feed_states
from akhbar.transforms.gather import ReadInbox
from akhbar.transforms.http import FetchConfig
from akhbar.transforms.model import ApplyTopicModel
from akhbar.transforms.outputlock import Fence, LeaseLost, OutputLock, writing
from akhbar.transforms.sideinput import shared_prior
from akhbar.transforms.sink import DEFAULT_MAX_ROWS, WriteArticles, WriteDeadLetters
from akhbar.transforms.state import GIVE_UP_AFTER_HOURS, load_prior


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: ``20261124T051500Z-1a2b3c4d``."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunConfig:
    sources: tuple[Source, ...]
    output: str
    run_id: str
    allow_private_hosts: bool = False
    fetch: FetchConfig = field(default_factory=FetchConfig)
    fetch_concurrency: int = 8
    near: NearDupConfig = field(default_factory=NearDupConfig)
    dedup_window_days: int = 30
    # a page that keeps failing is given up once its failures span this long (state.PageFailures)
    give_up_after_hours: float = GIVE_UP_AFTER_HOURS
    min_words: int = MIN_BODY_WORDS
    lexicon: str | None = None
    classifier: str | None = None  # a model file from `akhbar classify train`; None = the lexicon decides
    thresholds: dict[str, float] | None = None
    max_rows_per_file: int = DEFAULT_MAX_ROWS
    ignore_feed_backoff: bool = False
    # akhbar replay: start from these candidates (rebuilt from dead letters) instead of polling
    replay: tuple[Candidate, ...] | None = None
    # set by whoever holds the output's lock for the run: every commit checks it (outputlock.Fence)
    fence: Fence | None = None


def _load_shared_prior(output: str, **options):
    """:func:`load_prior` as a side input value, decoded once per process (see ``sideinput``)."""
    return shared_prior(load_prior(output, **options))


def stored_state(p: beam.Pipeline, cfg: RunConfig):
    """Side inputs read from the output once per run: the seen index (URLs, content hashes and
    near-duplicate entries of committed files) and the per-feed state.

    Both are typed ``Any``: Beam (2.77) finds a stateful ParDo's main input among all its inputs
    in set order, so a side input with a declared type that is not key-value (``PriorState``)
    would make streaming's ``PollWhenDue``, which takes both, fail to translate now and then."""
    prior = AsSingleton(
        p
        | "Output" >> beam.Create([cfg.output])
        | "LoadState" >> beam.Map(_load_shared_prior, window_days=cfg.dedup_window_days, config=cfg.near,
                                  give_up_after_hours=cfg.give_up_after_hours)
        .with_output_types(typing.Any)
    )
    feed_states = AsSingleton(
        p
        | "StateOutput" >> beam.Create([cfg.output])
        | "LoadFeedStates" >> beam.Map(load_feed_states).with_output_types(typing.Any)
    )
    return prior, feed_states


def fetch_extract_classify(candidates: beam.PCollection, cfg: RunConfig):
    """The steps batch and streaming graphs share: fetch each candidate, extract it, classify it
    (the lexicon, then the optional model). Returns the classified articles and the dead-letter
    PCollections of these steps."""
    pages = candidates | "Fetch" >> beam.ParDo(
        steps.FetchPages(cfg.fetch, cfg.allow_private_hosts, cfg.fetch_concurrency, cfg.run_id,
                         {s.id: s for s in cfg.sources})
    ).with_outputs(steps.DEAD, main="pages")
    decided, dead = extract_classify(pages.pages, cfg)
    return decided, [pages[steps.DEAD], *dead]


def extract_classify(pages: beam.PCollection, cfg: RunConfig):
    """Fetched pages → classified articles, and the dead-letter PCollections of these steps."""
    extracted = pages | "Extract" >> beam.ParDo(
        steps.ExtractArticles(cfg.near, cfg.min_words, cfg.run_id)
    ).with_outputs(steps.DEAD, main="articles")
    classified = extracted.articles | "Classify" >> beam.ParDo(
        steps.Classify(cfg.lexicon, cfg.thresholds, cfg.run_id)
    ).with_outputs(steps.DEAD, main="articles")
    dead = [extracted[steps.DEAD], classified[steps.DEAD]]
    if not cfg.classifier:
        return classified.articles, dead
    decided, failed = classified.articles | "ClassifyModel" >> ApplyTopicModel(cfg.classifier)
    return decided, [*dead, failed | "ModelDead" >> beam.ParDo(steps.Classify.Failed(cfg.run_id))]


def _from_inbox(p: beam.Pipeline, cfg: RunConfig, inbox: str, prior):
    """Streaming cycles: what the sources' gathers brought (pages fetched, dead letters of their
    polls and fetches, feed states), read from the cycle's inbox file, instead of polling and
    fetching here. Pages of stored articles are dropped (another cycle may have written one since
    it was fetched), one page per URL is kept; the dead letters are this cycle's."""
    brought = (
        p
        | "Inbox" >> beam.Create([inbox])
        | "Gathered" >> beam.ParDo(ReadInbox(cfg.run_id)).with_outputs(steps.DEAD, steps.FEED_STATE, main="pages")
    )
    pages = (
        brought.pages
        | "NotStored" >> beam.ParDo(steps.SkipStored(cfg.run_id), prior)
        | "ByArticle" >> beam.Map(lambda page: (page.candidate.article_id, page))
        | "OnePerURL" >> beam.CombinePerKey(steps.earliest_page)
        | "Pages" >> beam.Values()
        | "SpreadPages" >> beam.Reshuffle()
    )
    return pages, brought[steps.DEAD], brought[steps.FEED_STATE]


def build_pipeline(p: beam.Pipeline, cfg: RunConfig, inbox: str | None = None) -> dict[str, beam.PCollection]:
    """Add the batch graph to ``p``; return its main PCollections (for tests). With ``inbox``
    (local streaming cycles, see :mod:`akhbar.transforms.gather`) the feeds were polled and the
    pages fetched already: the graph starts from what the inbox file holds when it runs."""
    prior, feed_states = stored_state(p, cfg)
    if inbox is not None:
        pages, poll_dead, polled_states = _from_inbox(p, cfg, inbox, prior)
        decided, stage_dead = extract_classify(pages, cfg)
        return _dedup_and_write(decided, [poll_dead, *stage_dead], polled_states, prior, feed_states, cfg)
    feeds = [(s, f) for s in cfg.sources if s.enabled for f in s.feeds] if cfg.replay is None else []
    polled = (
        p
        | "Feeds" >> beam.Create(feeds)
        | "SpreadFeeds" >> beam.Reshuffle()
        | "Poll" >> beam.ParDo(steps.PollFeed(cfg.fetch, cfg.allow_private_hosts, cfg.run_id, cfg.ignore_feed_backoff),
                               feed_states, prior)
        .with_outputs(steps.DEAD, steps.FEED_STATE, main="candidates")
    )
    found = polled.candidates
    if cfg.replay is not None:
        found = (found, p | "Replay" >> beam.Create(list(cfg.replay))) | "WithReplay" >> beam.Flatten()
    candidates = (
        found
        | "NotStored" >> beam.ParDo(steps.SkipStored(cfg.run_id), prior)
        | "ByArticle" >> beam.Map(lambda c: (c.article_id, c))
        | "OnePerURL" >> beam.CombinePerKey(steps.earliest_candidate)
        | "Candidates" >> beam.Values()
        | "SpreadPages" >> beam.Reshuffle()
    )
    decided, stage_dead = fetch_extract_classify(candidates, cfg)
    return _dedup_and_write(decided, [polled[steps.DEAD], *stage_dead], polled[steps.FEED_STATE], prior,
                            feed_states, cfg)


def _dedup_and_write(decided, dead_parts, polled_states, prior, feed_states, cfg: RunConfig):
    """Exact and near-duplicate checks, the writes, then the feed states (once the writes are done)."""
    unique = (
        decided
        | "ByContent" >> beam.Map(lambda a: (a.content_hash, a))
        | "GroupContent" >> beam.GroupByKey()
        | "DropExact" >> beam.ParDo(steps.DropExactDuplicates(cfg.run_id), prior)
    )
    assignments = AsSingleton(
        unique
        | "NearKeys" >> beam.Map(steps.near_duplicate_key)
        | "AllKeys" >> beam.combiners.ToList()
        | "AssignNear" >> beam.Map(steps.near_duplicate_assignments, prior, cfg.near)
    )
    articles = (
        unique
        | "DropFingerprints" >> beam.Map(steps.without_fingerprints)
        | "MarkNear" >> beam.Map(steps.mark_near_duplicate, assignments)
    )
    written = articles | "WriteArticles" >> WriteArticles(cfg.output, cfg.run_id, cfg.max_rows_per_file, cfg.fence)
    dead = tuple(dead_parts) | "AllDead" >> beam.Flatten()
    dead_written = dead | "WriteDeadLetters" >> WriteDeadLetters(cfg.output, cfg.run_id, cfg.max_rows_per_file,
                                                                 cfg.fence)
    # feed validators are saved only once this run's rows are committed (see feedstate.py)
    _ = (
        polled_states
        | "AllFeedStates" >> beam.combiners.ToList()
        | "SaveFeedStates" >> beam.Map(steps.commit_feed_states, feed_states, beam.pvalue.AsList(written),
                                       beam.pvalue.AsList(dead_written), output=cfg.output, fence=cfg.fence)
    )
    return {"articles": articles, "dead_letters": dead, "written": written, "dead_written": dead_written}


# Beam's batch engine, the one its DirectRunner ends up on for this pipeline. Asked for by name
# because the DirectRunner of Beam 2.77 first tries the Prism runner, which downloads a binary
# from GitHub: a request to the internet, which fails offline before Beam falls back (and with
# internet access the job would run on Prism instead).
LOCAL_RUNNER = "FnApiRunner"


def with_runner(beam_args: list[str] | None) -> list[str]:
    """``beam_args`` with ``--runner=FnApiRunner`` added when they name no runner."""
    args = list(beam_args or [])
    if PipelineOptions(args).view_as(StandardOptions).runner is None:
        args.append(f"--runner={LOCAL_RUNNER}")
    return args


def describes_only(beam_args: list[str] | None) -> bool:
    """True when Beam only writes a job description to launch later (``--template_location``,
    as when a Dataflow template is built or launched): nothing has run when ``run`` returns."""
    return bool(PipelineOptions(list(beam_args or [])).view_as(GoogleCloudOptions).template_location)


def run(cfg: RunConfig, beam_args: list[str] | None = None, on_start=None):
    """Run the batch pipeline to completion; return Beam's result (metrics included).

    ``on_start(result)`` is called as soon as the runner hands back a result, before waiting for
    the end (runners such as Dataflow return while the job runs; the DirectRunner when done).

    This process holds the output's lock until the job ends (see
    :mod:`akhbar.transforms.outputlock`): :class:`~akhbar.transforms.outputlock.OutputLocked`
    at once if another run writes there; :class:`~akhbar.transforms.outputlock.LeaseLost` if
    the lock was lost while the job ran (its commits stopped at that point)."""
    options = PipelineOptions(with_runner(beam_args))
    with writing(cfg.output, cfg.run_id, "run" if cfg.replay is None else "replay") as lock:
        # a job described now and launched later (a template) runs after this lock is released: no fence
        cfg = dataclasses.replace(cfg, fence=None if describes_only(beam_args) else lock.fence())
        p = beam.Pipeline(options=options)
        build_pipeline(p, cfg)
        with lost_lock_ends_job(lock):
            result = p.run()
            lock.when_lost(lambda: cancel_job(result))
            if on_start is not None:
                on_start(result)
            result.wait_until_finish()
        lock.check()  # lost after the last commit: still no run report as if it had held the lock
    return result


def cancel_job(result) -> None:
    """Cancel a job that runs elsewhere (Dataflow, a portable runner); nothing to do for a job
    that has already ended."""
    try:
        result.cancel()
    except Exception:  # noqa: BLE001 - finished, or a runner that cannot cancel: its commits are fenced anyway
        pass


@contextlib.contextmanager
def lost_lock_ends_job(lock: OutputLock):
    """A job that failed because its commits found the output's lock lost ends with
    :class:`LeaseLost` (one clear message) instead of the runner's error about the write step."""
    try:
        yield
    except LeaseLost:
        raise
    except Exception as e:
        try:
            lock.check()
        except LeaseLost as lost:
            raise lost from e
        except OSError:  # the lock cannot be read now: the job's own error says more
            pass
        raise
