"""The ``akhbar`` command line.

    akhbar run --sources FILE --output PATH [--mode batch|streaming] [--duration S] [--allow-private-hosts] [options] [Beam options…]
    akhbar sources validate FILE
    akhbar sources probe URL [--allow-private-hosts] [--articles N]
    akhbar sources probe --source ID --sources FILE [--save-fixture DIR] [--allow-private-hosts] [--articles N]
    akhbar sources health OUTPUT [--json]
    akhbar replay OUTPUT --sources FILE [--reason CODE …] [--stage STAGE] [--since DAY] [--until DAY]
    akhbar compact OUTPUT [--partition dt=…[/source=…]] [--min-files N] [--target-rows N]
    akhbar classify train --labels FILE --articles FILE --out MODEL
    akhbar sample [--output DIR] [--port N]
    akhbar report OUTPUT [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--out report.html]

Exit codes: 0 success, 1 the run failed (or a probed feed or article failed), 2 bad configuration
or usage (nothing was run), 130 interrupted. Full reference: docs/cli.md (generated from this parser
by ``python -m akhbar.pipelines.clidoc``).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shlex
import sys
import tempfile
import textwrap
from datetime import datetime, timezone

from akhbar.schemas.sources import SourcesError, load_sources

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
DESCRIPTION = ("akhbar: Arabic news ingestion on Apache Beam. Polls news feeds, extracts and deduplicates "
               "articles, flags NATO/Ukraine stories and writes hive-partitioned Parquet. Run `akhbar COMMAND "
               "--help` for a command's options and examples.")
BEAM_NOTE = ("Any other --option of `run`, `sample` and `replay` is passed to Beam (e.g. --runner, "
             "--direct_num_workers, --direct_running_mode); an option that neither akhbar nor Beam knows is "
             "an error.")
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_FAILED, "the run failed (the summary and the log say why), it lost the output's lock to another run "
                  "while it ran (it stopped before committing more), a Parquet file of the output cannot be read "
                  "(named), or `sources probe` found a feed or article that fails"),
    (EXIT_CONFIG, "bad configuration or usage: unreadable or invalid sources file, bad option value, output "
                  "that cannot be written or that another run is writing to (its lock is held), a gs:// path "
                  "without credentials to reach it, … — nothing was run"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); files already committed stay, the next run goes on from them"),
)
# examples shown by `akhbar COMMAND --help` and in docs/cli.md
EXAMPLES = {
    "run": ["akhbar run --sources sources/arabic-news.yaml --output out/",
            "akhbar run --sources sources.yaml --output gs://BUCKET/news --fetch-concurrency 16",
            "akhbar run --sources sources.yaml --output out/ --direct_num_workers 2 "
            "--direct_running_mode multi_processing",
            "akhbar run --sources local.yaml --output /tmp/out --allow-private-hosts --host-interval 0"],
    "sources validate": ["akhbar sources validate sources/arabic-news.yaml"],
    "sources probe": ["akhbar sources probe https://example.com/rss.xml",
                      "akhbar sources probe --source bbc_arabic --sources sources/arabic-news.yaml",
                      "akhbar sources probe --source bbc_arabic --sources sources/arabic-news.yaml "
                      "--save-fixture tests/fixtures/sources/bbc_arabic"],
    "sources health": ["akhbar sources health out/", "akhbar sources health gs://BUCKET/news --json"],
    "sample": ["akhbar sample", "akhbar sample --output /tmp/sample --port 0"],
    "replay": ["akhbar replay out/ --sources sources.yaml",
               "akhbar replay out/ --sources sources.yaml --reason timeout --reason http_503 --since 2026-11-01"],
    "compact": ["akhbar compact out/", "akhbar compact out/ --partition dt=2026-11-24/source=bbc_arabic"],
    "report": ["akhbar report out/", "akhbar report out/ --since 2026-11-01 --until 2026-11-30 --out november.html"],
    "classify train": ["akhbar classify train --labels labels.tsv --articles articles.jsonl.gz --out model.joblib"],
}
# `akhbar run` options that set the FetchConfig field of the same name
FETCH_OPTIONS = ("user_agent", "host_interval", "host_concurrency", "connect_timeout", "read_timeout",
                 "total_timeout", "max_bytes", "retries")


def _add_give_up_arg(ap: argparse.ArgumentParser) -> None:
    # the values of akhbar.transforms.state's GIVE_UP_AFTER_HOURS and MAX_PAGE_FAILURES, written
    # out so that building the parser imports nothing heavy (a test checks that they agree)
    ap.add_argument("--give-up-after", type=float, default=1.0, metavar="HOURS",
                    help="polls leave out a page that failed for a lasting reason (a 404, no article text; see "
                         "docs/dead-letters.md) in 3 runs, the first and the latest of those failures at least this "
                         "many hours apart (default 1; 0 = after 3 runs however close together)")


def _add_failure_window_args(ap: argparse.ArgumentParser) -> None:
    """The options of `akhbar run` that decide which pages are given up, for the commands that count them."""
    ap.add_argument("--dedup-window-days", type=float, default=30, metavar="DAYS",
                    help="the runs' window, over which a page's failures are counted (default 30)")
    _add_give_up_arg(ap)


def _add_run_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--mode", choices=["batch", "streaming"], default="batch",
                    help="batch: poll every source once and exit; streaming: poll on each source's interval")
    ap.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                    help="streaming: stop cleanly after this many seconds")
    ap.add_argument("--window", type=float, default=60.0, metavar="SECONDS",
                    help="streaming on a streaming runner: output window, one set of files per window (default 60)")
    ap.add_argument("--state-ttl", type=float, default=7 * 86400.0, metavar="SECONDS",
                    help="streaming on a streaming runner: forget a URL or content hash this long after it was "
                         "last seen (default 7 days; the committed files are still checked)")
    ap.add_argument("--compact-every", type=float, default=600.0, metavar="SECONDS",
                    help="streaming on the local runner: merge small files between cycles this often "
                         "(default 600; 0 = never; local output only)")
    ap.add_argument("--allow-private-hosts", action="store_true",
                    help="permit fetching private, loopback and link-local addresses (local fixture sites)")
    ap.add_argument("--fetch-concurrency", type=int, default=8, metavar="N",
                    help="pages fetched at once per worker; in local streaming cycles, per source being polled "
                         "(default 8)")
    ap.add_argument("--dedup-window-days", type=float, default=30, metavar="DAYS",
                    help="how far back, by fetch time, near-duplicates are looked for and a page's failures are "
                         "counted towards giving it up (default 30; at most 3650)")
    _add_give_up_arg(ap)
    ap.add_argument("--min-words", type=int, default=None, metavar="N",
                    help="bodies shorter than this are dead letters (default 25)")
    ap.add_argument("--lexicon", default=None, metavar="FILE", help="classifier lexicon YAML (default: the bundled one)")
    ap.add_argument("--classifier", default=None, metavar="MODEL",
                    help="a model from `akhbar classify train` decides topics and scores (needs akhbar[ml]); "
                         "the lexicon still gives the evidence and gates every topic")
    ap.add_argument("--user-agent", default=None, metavar="TEXT", help="User-Agent header for every request (printable ASCII, at most 512 characters)")
    ap.add_argument("--host-interval", type=float, default=None, metavar="SECONDS",
                    help="seconds between requests to one host, per worker (default 1; a source's min_interval wins)")
    ap.add_argument("--host-concurrency", type=int, default=None, metavar="N",
                    help="requests in flight to one host, per worker (default 2; a source's max_connections wins)")
    ap.add_argument("--connect-timeout", type=float, default=None, metavar="SECONDS",
                    help="to connect (default 10)")
    ap.add_argument("--read-timeout", type=float, default=None, metavar="SECONDS",
                    help="without data arriving (default 20)")
    ap.add_argument("--total-timeout", type=float, default=None, metavar="SECONDS",
                    help="for a whole response (default 60)")
    ap.add_argument("--max-bytes", type=int, default=None, metavar="BYTES",
                    help="largest page or feed accepted, after decompression (default 8 MiB)")
    ap.add_argument("--retries", type=int, default=None, metavar="N",
                    help="retries of a transient failure (default 2)")
    ap.add_argument("--ignore-feed-backoff", action="store_true",
                    help="poll feeds that are backed off after repeated failures")
    ap.add_argument("--quiet", action="store_true", help="print only the output path (no progress, no summary)")
    ap.add_argument("--progress-interval", type=float, default=10.0, metavar="SECONDS",
                    help="seconds between progress lines when stderr is not a terminal (default 10)")


def _sub(parent, name: str, help: str, description: str, key: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help shows a description and the examples of :data:`EXAMPLES`."""
    examples = EXAMPLES.get(key or name, [])
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    return parent.add_parser(name, help=help, description=textwrap.fill(description, 90), epilog=epilog,
                             formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(textwrap.fill(text, 90, initial_indent=f"  {code:<4}", subsequent_indent=" " * 6)
                      for code, text in EXIT_CODES)
    ap = argparse.ArgumentParser(
        prog="akhbar", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(DESCRIPTION, 90),
        epilog=textwrap.fill(BEAM_NOTE, 90) + f"\n\nexit codes:\n{codes}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    run = _sub(sub, "run", "run the pipeline once over every source",
               "Poll every enabled source once, fetch and extract the new articles, deduplicate and classify them "
               "and write Parquet under OUTPUT; then print a summary and write it to OUTPUT/_reports/. Progress "
               "is shown on stderr while it runs.")
    run.add_argument("--sources", required=True, metavar="FILE", help="sources YAML file")
    run.add_argument("--output", required=True, metavar="PATH", help="local directory or gs://bucket/prefix")
    _add_run_args(run)
    src = sub.add_parser("sources", help="validate or probe sources; show feed health",
                         description="Work on the sources file and its feeds.")
    ssub = src.add_subparsers(dest="sources_cmd", required=True, metavar="SUBCOMMAND")
    val = _sub(ssub, "validate", "check a sources file; report every problem",
               "Check a sources file against its schema and report every problem with file, line and entry.",
               "sources validate")
    val.add_argument("file", metavar="FILE", help="sources YAML file")
    health = _sub(ssub, "health", "per-feed state of an output: last success, failures, backoff",
                  "Show each feed's state from earlier runs (OUTPUT/_state/feeds.json): last success, consecutive "
                  "failures and last error, backoff, how its server answers conditional requests, and how many of "
                  "its pages polls have given up on (failed for a lasting reason in 3 runs, over at least "
                  "--give-up-after hours; see dead_letter/).",
                  "sources health")
    health.add_argument("output", metavar="OUTPUT", help="output directory or gs://bucket/prefix of earlier runs")
    health.add_argument("--json", action="store_true", help="print the state as JSON")
    _add_failure_window_args(health)
    probe = _sub(ssub, "probe", "fetch a feed and a few articles; show what would be extracted",
                 "Fetch a feed and a few of its articles and show what the pipeline would make of them (title, "
                 "date, language, topics, words, first line) and every problem; writes nothing unless "
                 "--save-fixture is given.", "sources probe")
    probe.add_argument("url", nargs="?", metavar="URL", help="a feed URL (or use --source ID --sources FILE)")
    probe.add_argument("--articles", type=int, default=3, metavar="N", help="how many articles to fetch per feed (default 3)")
    probe.add_argument("--allow-private-hosts", action="store_true",
                       help="permit fetching private, loopback and link-local addresses (local fixture sites)")
    probe.add_argument("--source", default=None, metavar="ID", help="probe every feed of this source of --sources")
    probe.add_argument("--sources", default=None, metavar="FILE", help="sources YAML file (with --source)")
    probe.add_argument("--save-fixture", default=None, metavar="DIR",
                       help="with --source: record every response into DIR (index.json, responses/, probe.txt)")
    probe.add_argument("--host-interval", type=float, default=None, metavar="SECONDS",
                       help="with --source: seconds between requests to one host (default: the source's min_interval, else 1)")
    sample = _sub(sub, "sample", "serve the bundled Arabic news site on 127.0.0.1 and ingest it",
                  "Serve the small Arabic news site bundled with akhbar on 127.0.0.1 and run the pipeline over "
                  "it: a complete run on a laptop, with no network.")
    sample.add_argument("--output", default="akhbar-sample-output", metavar="DIR",
                        help="output directory (default ./akhbar-sample-output)")
    sample.add_argument("--port", type=_port, default=8765, metavar="N",
                        help="port for the sample site (default 8765; a busy port is replaced by a free one; 0 = any)")
    replay = _sub(sub, "replay", "run failed article items from dead_letter/ through the pipeline again",
                  "Run the failed article pages recorded in OUTPUT/dead_letter/ (stages fetch and extract) through "
                  "fetch, extract, classify, dedup and write again. Feeds are not polled; URLs stored meanwhile "
                  "are skipped; old dead letters stay as history.")
    replay.add_argument("path", metavar="OUTPUT", help="output directory or gs://bucket/prefix of earlier runs")
    replay.add_argument("--sources", required=True, metavar="FILE",
                        help="sources YAML file (items of other sources are skipped)")
    replay.add_argument("--reason", action="append", default=None, metavar="CODE",
                        help="only dead letters with this reason code, e.g. http_404 (repeatable; default: all; a code "
                             "not in docs/dead-letters.md is refused)")
    replay.add_argument("--stage", choices=["fetch", "extract"], default=None,
                        help="only dead letters of this stage (default: fetch and extract)")
    replay.add_argument("--since", type=_day, default=None, metavar="YYYY-MM-DD",
                        help="only failures recorded on or after this UTC day")
    replay.add_argument("--until", type=_day, default=None, metavar="YYYY-MM-DD",
                        help="only failures recorded on or before this UTC day")
    replay.add_argument("--allow-private-hosts", action="store_true",
                        help="permit fetching private, loopback and link-local addresses (local fixture sites)")
    replay.add_argument("--fetch-concurrency", type=int, default=8, metavar="N",
                        help="pages fetched at once per worker (default 8)")
    replay.add_argument("--quiet", action="store_true", help="print only the output path (no progress, no summary)")
    replay.add_argument("--progress-interval", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between progress lines when stderr is not a terminal (default 10)")
    compact = _sub(sub, "compact", "merge small Parquet files per partition; readers keep reading",
                   "Merge the small Parquet files of each partition of articles/ and dead_letter/ into fewer "
                   "files, swapping each partition atomically so readers and running writers are not disturbed. "
                   "Local output only.")
    compact.add_argument("path", metavar="OUTPUT", help="output directory of earlier runs (local)")
    compact.add_argument("--partition", action="append", default=None, metavar="KEY=VALUE[/KEY=VALUE]",
                         help="only partitions with these values, e.g. dt=2026-11-24/source=bbc_arabic or "
                              "dt=2026-11-24 (repeatable; default: all)")
    compact.add_argument("--min-files", type=int, default=2, metavar="N",
                         help="compact a partition when it has at least this many small files (default 2)")
    compact.add_argument("--target-rows", type=int, default=100_000, metavar="N",
                         help="rows per merged file; files this big already are left alone (default 100000)")
    report = _sub(sub, "report", "write a self-contained HTML report about an output folder",
                  "Write one HTML file (inline SVG charts, no JavaScript, nothing loaded from the network): articles "
                  "per day and source, NATO/Ukraine share, near-duplicate clusters, dead letters by reason and "
                  "source, feed health.")
    report.add_argument("output", metavar="OUTPUT", help="output directory or gs://bucket/prefix of earlier runs")
    report.add_argument("--since", type=_day, default=None, metavar="YYYY-MM-DD", help="first day (inclusive)")
    report.add_argument("--until", type=_day, default=None, metavar="YYYY-MM-DD", help="last day (inclusive)")
    report.add_argument("--out", default="report.html", metavar="FILE", help="HTML file to write (default report.html)")
    _add_failure_window_args(report)
    cls = sub.add_parser("classify", help="the optional learned topic classifier",
                         description="The optional learned topic classifier (needs akhbar[ml]).")
    csub = cls.add_subparsers(dest="classify_cmd", required=True, metavar="SUBCOMMAND")
    train = _sub(csub, "train", "train a topic model on your labelled articles (needs akhbar[ml])",
                 "Train a NATO/Ukraine model on labelled articles; `akhbar run --classifier MODEL` then uses it "
                 "(the lexicon still gates every topic and gives the evidence).", "classify train")
    train.add_argument("--labels", required=True, metavar="FILE", help="TSV or JSONL: id (or docno), nato, ukraine (0/1)")
    train.add_argument("--articles", default=None, metavar="FILE",
                       help="JSONL(.gz): id (or docno), title, body (or text); optional source (groups folds)")
    train.add_argument("--out", required=True, metavar="MODEL", help="model file to write (joblib)")
    train.add_argument("--lexicon", default=None, metavar="FILE",
                       help="lexicon YAML for the gate and features (default: bundled)")
    train.add_argument("--c", type=float, default=4.0, metavar="C", help="inverse regularization strength (default 4)")
    train.add_argument("--folds", type=int, default=5, metavar="N",
                       help="folds for choosing the thresholds out of fold (default 5; <2: threshold 0.5)")
    return ap


def _check_output(output: str, must_exist: bool = False) -> str | None:
    if not output.strip() or output == "file://":
        return "the output path is empty; give a directory (\".\" for the current one) or gs://bucket/prefix"
    if output.startswith("gs://"):
        try:
            from google.cloud import storage  # noqa: F401 - what transforms/store.py uses for gs://
        except ImportError:
            from akhbar.transforms.store import GCS_NEEDS

            return GCS_NEEDS
        if not output[len("gs://"):].partition("/")[0]:
            return f"gs:// output needs a bucket: gs://BUCKET/PREFIX, not {output!r}"
        return None
    if "://" in output and not output.startswith("file://"):
        return f"unsupported output {output!r}: use a local directory or gs://bucket/prefix"
    return _check_local_dir(output[len("file://"):] if output.startswith("file://") else output, must_exist)


def _check_gcs_access(*paths: str | None) -> str | None:
    """Why the first ``gs://`` path among ``paths`` cannot be reached from here (no credentials),
    naming it; ``None`` if it can, or none is on gs://. Run after the usage checks: it looks for
    credentials (as the run itself would), which usage mistakes should not wait for."""
    remote = [p for p in paths if p and p.startswith("gs://")]
    if not remote:
        return None
    from akhbar.transforms.store import gcs_client_problem

    return gcs_client_problem(remote[0])


def _missing_local_model(path: str | None) -> str | None:
    """``--classifier PATH`` names a local file that is not there (checked before the model loader,
    which imports Beam and scikit-learn, is); other problems are the loader's to name."""
    from akhbar.transforms.store import is_local

    if path is None or not is_local(path) or os.path.exists(path.removeprefix("file://")):
        return None
    return f"classifier: {path}: no such model file"


def _check_local_dir(path: str, must_exist: bool = False) -> str | None:
    """Why ``path`` cannot be (or become) an output folder; ``None`` if it can. Creates nothing."""
    if os.path.islink(path) and not os.path.exists(path):
        return f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path} exists and is not a directory"
    if must_exist and not os.path.isdir(path):
        return f"no output at {path} (no such directory)"
    existing = os.path.abspath(path)
    while not os.path.exists(existing):  # the folder the run would create it in
        if os.path.islink(existing):
            return f"cannot create directory {path}: {existing} is a symbolic link to {os.readlink(existing)}, " \
                   "which does not exist"
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"cannot create directory {path}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{'directory' if existing == os.path.abspath(path) else 'cannot create directory'} {path}: " \
               f"{existing} is not writable"
    return None


def _check_file_target(path: str, what: str, remote: bool = False) -> str | None:
    """Why a file cannot be written at ``path``, a local one or on gs:// (``None`` if it can)."""
    if "://" in path and not path.startswith("file://"):
        if path.startswith("gs://") and remote:
            return _check_output(path)
        return f"{what} {path!r}: use a local file name{' or gs://BUCKET/NAME' if remote else ''}"
    path = path[len("file://"):] if path.startswith("file://") else path
    if not path:
        return f"{what} is empty; give a file name"
    if os.path.isdir(path):
        return f"{what} {path} is a directory; give a file name"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"{what} {path}: folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{what} {path}: folder {folder} is not writable"
    return None


MAX_LOCAL_WORKERS = 256


class _BeamWarnings(logging.Handler):
    """Collects what Beam's option parser discards (it only logs a warning)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.discarded: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Discarding"):
            self.discarded.append(record.getMessage())


def _check_beam_args(beam_args: list[str]) -> str | None:
    """Why the options passed on to Beam cannot work (``None`` if they can): options neither akhbar
    nor Beam knows (Beam itself would only warn and drop them, hiding a typo), or an unknown runner."""
    if not beam_args:
        return None
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
    from apache_beam.runners.runner import create_runner

    catch = _BeamWarnings()
    log = logging.getLogger("apache_beam.options.pipeline_options")
    log.addHandler(catch)
    try:
        options = PipelineOptions(beam_args)
        options.get_all_options()
        runner = options.view_as(StandardOptions).runner
        workers = options.view_as(DirectOptions).direct_num_workers
    except SystemExit:  # Beam's parser printed why (e.g. a number that is not one)
        return "invalid Beam option value (see above)"
    finally:
        log.removeHandler(catch)
    if catch.discarded:
        flags = [a for a in beam_args if a.startswith("-")]
        return (f"unknown option(s): {' '.join(flags) if len(flags) < 6 else catch.discarded[0]} — neither akhbar "
                f"nor Beam knows {'it' if len(flags) == 1 else 'them'} (see `akhbar COMMAND --help`)")
    if workers is not None and not 0 <= workers <= MAX_LOCAL_WORKERS:  # Beam fails mid-run (IndexError, threads)
        return f"--direct_num_workers must be from 0 (one per CPU) to {MAX_LOCAL_WORKERS}, not {workers}"
    if runner:
        try:
            create_runner(runner)
        except (ValueError, ImportError) as e:
            return f"--runner {runner}: {e}"
    return None


def runner_note(beam_args: list[str]) -> str | None:
    """A warning about the local runner's mode, when one applies."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    if PipelineOptions(list(beam_args or [])).view_as(DirectOptions).direct_running_mode == "multi_threading":
        return ("--direct_running_mode multi_threading runs every worker under one interpreter lock, so it "
                "cannot use a second core for this CPU-bound work, and Beam's runner has failed in that mode "
                "here now and then (see docs/performance.md); multi_processing uses the cores")
    return None


# Runners whose workers are other machines: a path on this machine's disk means nothing to them.
REMOTE_RUNNERS = ("DataflowRunner", "TestDataflowRunner")


def _check_remote(beam_args: list[str], **paths: str | None) -> str | None:
    """On a remote runner, every path the workers open must be on Cloud Storage."""
    if not beam_args:  # the local runner (Beam is imported only when there is an option to read)
        return None
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner or ""
    if runner.rsplit(".", 1)[-1] not in REMOTE_RUNNERS:
        return None
    for name, path in paths.items():
        if path and not path.startswith("gs://"):
            return (f"--{name} {path!r} is a local path, which {runner} workers cannot read or write: "
                    f"use gs://BUCKET/…")
    return None


# (option, lowest, highest) of the numbers `akhbar run` takes. The limits are far beyond any
# sensible value; they are there to stop typos and values no clock or buffer can hold.
RUN_BOUNDS = (
    ("fetch_concurrency", 1, 1024), ("dedup_window_days", 0, 3650), ("give_up_after", 0, 3650 * 24),
    ("min_words", 1, 100_000),
    ("host_interval", 0, 3600), ("host_concurrency", 1, 64), ("connect_timeout", 0.1, 3600),
    ("read_timeout", 0.1, 3600), ("total_timeout", 0.1, 86400), ("max_bytes", 1024, 2**31),
    ("retries", 0, 10), ("progress_interval", 0.1, 86400),
)
STREAMING_BOUNDS = (("duration", 0, 10 * 365 * 86400), ("window", 0, 86400), ("state_ttl", 0, 3650 * 86400),
                    ("compact_every", 0, 365 * 86400))
# what an HTTP header value can carry as it is: printable ASCII (no CR/LF, no other control characters)
USER_AGENT = re.compile(r"[\x20-\x7e]{1,512}")


def _run_bounds(*names: str) -> tuple:
    """The ``RUN_BOUNDS`` of these options, for a command that shares them with `akhbar run`."""
    return tuple(b for b in RUN_BOUNDS if b[0] in names)


def _failure_window_problem(args) -> str | None:
    """What is wrong with the options of :func:`_add_failure_window_args`, if anything."""
    bad = _number_problems(args, _run_bounds("dedup_window_days", "give_up_after"))
    return "; ".join(bad) or None


def _number_problems(args, bounds) -> list[str]:
    """What is wrong with the numeric options of ``bounds`` (none given is fine); NaN and infinity
    are refused, comparisons alone would let NaN through."""
    bad = []
    for name, low, high in bounds:
        value = getattr(args, name, None)
        flag = f"--{name.replace('_', '-')}"
        if value is None:
            continue
        if not math.isfinite(value):
            bad.append(f"{flag} must be a finite number, not {value}")
        elif value < low:
            bad.append(f"{flag} must be at least {low}")
        elif value > high:
            bad.append(f"{flag} must be at most {high}")
    return bad


def _set_aside_unreadable_feed_state(output: str) -> str | None:
    """Before a run: move an unreadable ``_state/feeds.json`` out of the way, with a warning, so that
    it does not fail this run and every later one. It holds only feed validators and health; the
    stored-article index is read from the committed files, so nothing is written twice. A storage
    error is left to the run itself (which reads the state again). Returns why the run cannot
    start: the state is unreadable and cannot be moved."""
    from akhbar.transforms.feedstate import CorruptFeedState, load_feed_states, set_aside_feed_states

    try:
        load_feed_states(output)
        return None
    except CorruptFeedState as e:
        problem = str(e)
    except OSError:
        return None
    try:
        aside = set_aside_feed_states(output)
    except OSError as e:
        return f"{problem}, and it cannot be moved aside: {e}"
    print(f"akhbar: warning: {problem}; moved it to {aside} and starting without feed state (conditional-request "
          "validators and feed health start over; stored articles are still recognised and not written again)",
          file=sys.stderr)
    return None


def cmd_run(args, beam_args: list[str], sources_path: str | None = None) -> int:
    sources_path = sources_path or args.sources
    try:
        sources = load_sources(sources_path)
    except SourcesError as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return EXIT_CONFIG
    # the checks that need no import come first: a typo is refused in a fraction of a second, not
    # after Beam (over a second) or scikit-learn have been imported
    bad = _number_problems(args, RUN_BOUNDS)
    if args.user_agent is not None and not USER_AGENT.fullmatch(args.user_agent):
        bad.append("--user-agent must be 1 to 512 printable ASCII characters (it is sent as an HTTP header)")
    if args.mode == "batch" and args.duration is not None:
        bad.append("--duration applies to --mode streaming only")
    if args.mode == "streaming":
        bad += _number_problems(args, STREAMING_BOUNDS) + [
            f"--{name.replace('_', '-')} must be positive" for name in ("duration", "window", "state_ttl")
            if getattr(args, name) == 0]
    if bad:
        print(f"akhbar: {'; '.join(bad)}", file=sys.stderr)
        return EXIT_CONFIG
    problem = (_check_output(args.output) or _check_beam_args(beam_args)
               or _check_remote(beam_args, output=args.output, classifier=args.classifier)
               or _missing_local_model(args.classifier)
               or _check_gcs_access(args.output, args.lexicon, args.classifier))
    if problem:
        print(f"akhbar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        from akhbar.transforms.classify import load_lexicon

        load_lexicon(args.lexicon)  # fail before running, naming the file and the entry
    except (OSError, ValueError) as e:
        print(f"akhbar: lexicon: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if args.classifier is not None:  # "" is a file name too, refused like --lexicon ""
        try:
            from akhbar.transforms.model import load_model

            load_model(args.classifier)  # fail before running: missing file, not a model, no scikit-learn
        except (RuntimeError, ValueError) as e:
            print(f"akhbar: classifier: {e}", file=sys.stderr)
            return EXIT_CONFIG

    from akhbar.pipelines.batch import describes_only

    problem = None if describes_only(beam_args) else _set_aside_unreadable_feed_state(args.output)
    if problem:
        print(f"akhbar: {problem}", file=sys.stderr)
        return EXIT_CONFIG

    from akhbar.pipelines.batch import RunConfig, new_run_id  # Beam is imported only once the checks pass
    from akhbar.pipelines.summary import duckdb_command, duckdb_folder, duckdb_sql
    from akhbar.transforms.http import FetchConfig

    fetch = FetchConfig(**{name: getattr(args, name) for name in FETCH_OPTIONS if getattr(args, name) is not None})
    cfg_kwargs = {}
    if args.min_words is not None:
        cfg_kwargs["min_words"] = args.min_words
    cfg = RunConfig(
        sources=tuple(sources), output=args.output, run_id=new_run_id(),
        allow_private_hosts=args.allow_private_hosts, fetch=fetch, fetch_concurrency=args.fetch_concurrency,
        dedup_window_days=args.dedup_window_days, give_up_after_hours=args.give_up_after, lexicon=args.lexicon,
        classifier=args.classifier, ignore_feed_backoff=args.ignore_feed_backoff, **cfg_kwargs,
    )
    if not args.quiet:
        n_feeds = sum(len(s.feeds) for s in sources if s.enabled)
        print(f"akhbar: run {cfg.run_id}: {len(sources)} sources, {n_feeds} feeds -> {args.output}", flush=True)
    if args.mode == "streaming":
        from akhbar.pipelines.streaming import run_streaming

        return run_streaming(cfg, beam_args, args)
    summary = _run_and_report(cfg, beam_args, "run", args.quiet, progress_interval=args.progress_interval)
    if summary is None:
        return EXIT_FAILED
    if args.quiet:
        print(args.output)
    else:
        folder = duckdb_folder(args.output)
        where = "" if folder is None else (f", run in the output folder: DuckDB cannot read a path with a backslash "
                                           f"in a pattern — cd -- {shlex.quote(folder)}")
        print(f"\nQuery it with DuckDB (SQL, for the duckdb CLI or any DuckDB client{where}):\n"
              f"  {duckdb_sql(args.output)};")
        print(f"or paste this (duckdb is installed with akhbar):\n  {duckdb_command(args.output, sys.executable)}")
    return EXIT_OK


def _run_and_report(cfg, beam_args: list[str], what: str, quiet: bool = False, progress_interval: float = 10.0,
                    **extra) -> dict | None:
    """Run the pipeline (with live progress on stderr unless quiet), write the run's JSON report
    and print its summary; ``None`` if it failed."""
    from akhbar.pipelines.batch import describes_only, run
    from akhbar.pipelines.progress import Progress, live_counts_visible
    from akhbar.pipelines.summary import beam_counters, render, summarize, write_report
    from akhbar.transforms.outputlock import LeaseLost, OutputLocked

    started = datetime.now(timezone.utc)
    note = runner_note(beam_args)
    if note and not quiet:
        print(f"akhbar: note: {note}", file=sys.stderr)
    feeds = 0 if cfg.replay is not None else sum(len(s.feeds) for s in cfg.sources if s.enabled)
    progress = None if quiet else Progress(feeds, interval=progress_interval,
                                           live=live_counts_visible(beam_args)).start()
    try:
        result = run(cfg, beam_args, on_start=progress.attach if progress else None)
    except OutputLocked as e:  # another run writes to this output: nothing was run (exit 2, as a usage error)
        if progress:
            progress.stop()
        print(f"akhbar: {e}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except LeaseLost as e:  # another run took the output over while this one ran: stopped before committing more
        if progress:
            progress.stop()
        print(f"akhbar: {what} {e}", file=sys.stderr)
        return None
    except Exception as e:  # noqa: BLE001 - report and exit non-zero; Beam already logged the trace
        if progress:
            progress.stop()
        logging.exception("%s failed", what)
        print(f"akhbar: {what} {cfg.run_id} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    if progress:
        progress.stop()
    if describes_only(beam_args):  # the job runs later, elsewhere: a report now would say 0 rows
        print(f"akhbar: {what} {cfg.run_id}: job description written for a later launch; no run report")
        return dict(extra)
    summary = {**summarize(cfg.output, cfg.run_id, beam_counters(result), started), **extra}
    report = write_report(cfg.output, summary)
    if not quiet:
        print(f"{render(summary)}\n\n  report: {report}")
    return summary


def cmd_validate(args) -> int:
    try:
        sources = load_sources(args.file)
    except SourcesError as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return EXIT_CONFIG
    feeds = sum(len(s.feeds) for s in sources)
    print(f"{args.file}: OK — {len(sources)} sources, {feeds} feeds")
    return EXIT_OK


def cmd_health(args) -> int:
    from akhbar.pipelines.summary import render_feed_health
    from akhbar.transforms.feedstate import CorruptFeedState, load_feed_states

    problem = _failure_window_problem(args) or _check_output(args.output) or _check_gcs_access(args.output)
    if problem:
        print(f"akhbar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        states = load_feed_states(args.output)
    except CorruptFeedState as e:
        print(f"akhbar: {e} (the next `akhbar run` moves it aside and starts over)", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as e:
        print(f"akhbar: cannot read the feed state under {args.output}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if not states:
        print(f"akhbar: no feed state under {args.output} (no run has finished there yet)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        from akhbar.transforms.state import PageFailures, stored_article_ids

        given_up = PageFailures(args.output, args.dedup_window_days, args.give_up_after,
                                write_log=False).given_up_by_feed(stored_article_ids(args.output))
    except (OSError, ValueError) as e:  # the feed states are still worth showing
        print(f"akhbar: pages given up on: not counted ({type(e).__name__}: {e})", file=sys.stderr)
        given_up = None
    print(render_feed_health(list(states.values()), datetime.now(timezone.utc), as_json=args.json, given_up=given_up))
    return EXIT_OK


def cmd_probe(args) -> int:
    bad = _number_problems(args, (("articles", 0, 1000), *_run_bounds("host_interval")))
    if bad:
        print(f"akhbar: {'; '.join(bad)}", file=sys.stderr)
        return EXIT_CONFIG
    if args.source or args.sources or args.save_fixture:
        if not (args.source and args.sources) or args.url:
            print("akhbar: use either a feed URL or --source ID --sources FILE [--save-fixture DIR]", file=sys.stderr)
            return EXIT_CONFIG
        problem = _check_local_dir(args.save_fixture) if args.save_fixture else None
        if problem:
            print(f"akhbar: --save-fixture: {problem}", file=sys.stderr)
            return EXIT_CONFIG
        from akhbar.pipelines.fixture import probe_source

        return probe_source(args.sources, args.source, n_articles=args.articles,
                            allow_private=args.allow_private_hosts, save_to=args.save_fixture,
                            host_interval=args.host_interval)
    if not args.url:
        print("akhbar: sources probe needs a feed URL or --source ID --sources FILE", file=sys.stderr)
        return EXIT_CONFIG
    from akhbar.schemas.sources import feed_url_problem

    problem = feed_url_problem(args.url)
    if problem:
        print(f"akhbar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from akhbar.pipelines.probe import probe

    return probe(args.url, n_articles=args.articles, allow_private=args.allow_private_hosts)


def cmd_sample(args, beam_args: list[str]) -> int:
    from akhbar.sample.site import SampleSite, sources_yaml

    try:
        site = SampleSite(port=args.port).__enter__()
    except OSError as e:
        print(f"akhbar: port {args.port} cannot be used ({e.strerror or e}); using a free port instead", file=sys.stderr)
        site = SampleSite(port=0).__enter__()
    try:
        print(f"akhbar: serving the bundled sample site on {site.base_url}", flush=True)
        with tempfile.TemporaryDirectory(prefix="akhbar-sample-") as tmp:
            path = os.path.join(tmp, "sources.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(sources_yaml(site.base_url))
            # our own server on loopback: no politeness delay needed
            ns = _parser().parse_args(["run", "--sources", path, "--output", args.output, "--allow-private-hosts",
                                       "--host-interval", "0"])
            return cmd_run(ns, beam_args, sources_path=path)
    finally:
        site.__exit__(None, None, None)


def _port(text: str) -> int:
    """A TCP port number (0 = any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _day(text: str):
    """A YYYY-MM-DD command-line value as a date."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None


def cmd_replay(args, beam_args: list[str]) -> int:
    from akhbar.pipelines.replay import REPLAYABLE_STAGES, plan_replay

    try:
        sources = load_sources(args.sources)
    except SourcesError as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return EXIT_CONFIG
    from akhbar.schemas.reasons import REASONS, is_known
    from akhbar.transforms.store import UnreadableFile

    problem = (_check_output(args.path, must_exist=True) or _check_beam_args(beam_args)
               or _check_remote(beam_args, output=args.path))
    bad = ([problem] if problem else []) + _number_problems(args, _run_bounds("fetch_concurrency",
                                                                              "progress_interval"))
    if args.since and args.until and args.since > args.until:
        bad.append("--since is after --until")
    unknown = [code for code in args.reason or [] if not is_known(code)]
    if unknown:  # a typo would match nothing and replay nothing, successfully
        bad.append(f"unknown --reason {', '.join(map(repr, unknown))}: the codes are "
                   f"{', '.join(REASONS)} (see docs/dead-letters.md)")
    problem = "; ".join(bad) or _check_gcs_access(args.path) or _set_aside_unreadable_feed_state(args.path)
    if problem:
        print(f"akhbar: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    from akhbar.pipelines.batch import RunConfig, new_run_id

    stages = (args.stage,) if args.stage else REPLAYABLE_STAGES
    try:
        plan = plan_replay(args.path, sources, stages=stages, reasons=args.reason, since=args.since,
                           until=args.until)
    except (UnreadableFile, OSError) as e:
        print(f"akhbar: replay: cannot read the dead letters: {e}", file=sys.stderr)
        return EXIT_FAILED
    cfg = RunConfig(sources=tuple(sources), output=args.path, run_id=new_run_id(),
                    allow_private_hosts=args.allow_private_hosts, fetch_concurrency=args.fetch_concurrency,
                    replay=tuple(plan.candidates))
    if not args.quiet:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(plan.skipped.items())) or "none"
        print(f"akhbar: replay {cfg.run_id}: {len(plan.candidates)} URLs from {plan.dead_letters_read} matching "
              f"dead letters (not replayed: {skipped}) -> {args.path}", flush=True)
    if _run_and_report(cfg, beam_args, "replay", args.quiet, progress_interval=args.progress_interval,
                       replayed_urls=len(plan.candidates)) is None:
        return EXIT_FAILED
    if args.quiet:
        print(args.path)
    return EXIT_OK


def cmd_compact(args) -> int:
    from akhbar.transforms import store
    from akhbar.transforms.compact import CompactionUnsupported, compact

    bad = _number_problems(args, (("min_files", 1, 1_000_000), ("target_rows", 1, 100_000_000)))
    if bad:
        print(f"akhbar: {'; '.join(bad)}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        selectors = [store.parse_partition(p) for p in args.partition] if args.partition else None
    except store.UnsafePartition as e:
        print(f"akhbar: --partition: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if store.is_local(args.path) and not os.path.isdir(store.join(args.path)):
        print(f"akhbar: {args.path} is not a directory", file=sys.stderr)
        return EXIT_CONFIG
    try:
        reports = compact(args.path, selectors, min_files=args.min_files, target_rows=args.target_rows)
    except CompactionUnsupported as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except store.UnreadableFile as e:  # partitions done so far stay done
        print(f"akhbar: compaction failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - report and exit non-zero; partitions done so far stay done
        logging.exception("compaction failed")
        print(f"akhbar: compaction failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    done = [r for r in reports if r.status == "compacted"]
    for r in done:
        print(f"{r.dataset}/{r.partition}: {r.inputs} files, {r.rows} rows -> {len(r.outputs)} file(s) "
              f"in {r.seconds} s")
    for r in reports:
        if r.status != "compacted" and not r.why.endswith(f"fewer than {args.min_files}"):
            print(f"{r.dataset}/{r.partition}: skipped: {r.why}")
    cleaned = sum(r.stale_temporaries_removed + r.placeholders_removed for r in reports)
    print(f"akhbar: compacted {len(done)} of {len(reports)} partitions; removed {cleaned} leftover file(s)")
    return EXIT_OK


class _QuietBeamImports(logging.Filter):
    """Beam warns at import that optional Google API clients are missing; irrelevant here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietBeamImports())
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    logging.getLogger("htmldate").setLevel(logging.ERROR)
    ap = _parser()
    args, rest = ap.parse_known_args(argv)
    if args.cmd == "compact" and not rest:
        return cmd_compact(args)
    if args.cmd == "replay":
        return cmd_replay(args, rest)
    if args.cmd not in ("run", "sample") and rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.cmd == "classify":
        from akhbar.pipelines.train import train_command

        missing = [f"{flag} {path}: no such file" for flag, path in (("--labels", args.labels), ("--articles", args.articles))
                   if path and not os.path.isfile(path)]
        problem = ("; ".join(missing + _number_problems(args, (("c", 1e-6, 1e6), ("folds", 0, 100))))
                   or _check_file_target(args.out, "--out"))
        if problem:
            print(f"akhbar: {problem}", file=sys.stderr)
            return EXIT_CONFIG
        return train_command(args)
    if args.cmd == "run":
        return cmd_run(args, rest)
    if args.cmd == "sample":
        return cmd_sample(args, rest)
    if args.cmd == "report":
        from akhbar.pipelines.report import cmd_report

        problem = (_failure_window_problem(args) or _check_output(args.output)
                   or _check_file_target(args.out, "--out", remote=True) or _check_gcs_access(args.output, args.out))
        if problem:
            print(f"akhbar: {problem}", file=sys.stderr)
            return EXIT_CONFIG
        return cmd_report(args)
    if args.sources_cmd == "health":
        return cmd_health(args)
    if args.sources_cmd == "validate":
        return cmd_validate(args)
    return cmd_probe(args)


class _ReaderMayLeave:
    """stdout or stderr for `akhbar … | head`: once the reader has gone, what is written is dropped
    (the descriptor is pointed at /dev/null, so later flushes, at exit too, succeed) and the command
    goes on to its own exit code, instead of ending with whatever code a BrokenPipeError would get."""

    def __init__(self, stream):
        self._stream = stream

    def _gone(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()
            self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _entry() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (embedded, captured): leave it
            continue
        setattr(sys, name, _ReaderMayLeave(stream))
    try:
        code = main()
    except KeyboardInterrupt:
        print("\nakhbar: interrupted; files already committed stay, the next run goes on from them", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)
