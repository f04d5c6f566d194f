"""Streaming mode: the schedule (pure), the stateful steps and windowed output under TestStream on
the BundleBasedDirectRunner (state, event-time timers, expiry, late data), the whole streaming
graph driven by TestStream ticks against a loopback site, and the local cycle mode end to end."""
from __future__ import annotations

import shutil
import threading
import time
import typing
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from akhbar.pipelines import streaming as ps
from akhbar.pipelines.batch import RunConfig, new_run_id
from akhbar.schemas.records import Article, Candidate, Source
from akhbar.schemas.sources import validate_text
from akhbar.transforms import schedule as sch
from akhbar.transforms import steps
from akhbar.transforms import streaming as st
from akhbar.transforms.dedup import NearDupConfig, content_hash
from akhbar.transforms.feedstate import load_feed_states
from akhbar.transforms.http import FetchConfig
from akhbar.transforms.state import PriorState
from akhbar.transforms.urls import article_id as cand_id
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.test_stream import TestStream as Stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from akhbar.sample.growing import GrowingSite

T0 = datetime(2026, 11, 24, 23, 50, tzinfo=timezone.utc)


def at(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def streaming_pipeline() -> beam.Pipeline:
    opts = PipelineOptions([])
    opts.view_as(StandardOptions).streaming = True
    return beam.Pipeline(runner=BundleBasedDirectRunner(), options=opts)


def prior_of(p, state: PriorState):
    # typed Any, like the graph's own side inputs: a stateful ParDo with several side inputs finds
    # its main input among all of them in set order, and fails on a typed non-KV side input
    return beam.pvalue.AsSingleton(p | "Prior" >> beam.Create([state]).with_output_types(typing.Any))


# --- the schedule ------------------------------------------------------------------------------------

def test_intervals_adapt_within_bounds():
    assert sch.bounds(900) == (225.0, 3600.0)
    assert sch.bounds(2) == (1.0, 8.0)
    busy, quiet = 900.0, 900.0
    for _ in range(10):
        busy = sch.next_interval(busy, 900, new_items=3)
        quiet = sch.next_interval(quiet, 900, new_items=0)
    assert busy == 225.0 and quiet == 3600.0  # clamped at both ends
    e = sch.SourceSchedule("a", 900.0, T0)
    e2 = sch.after_poll(e, 900, T0, 2)
    assert e2.interval_s == 450.0 and e2.next_due == T0 + timedelta(seconds=450) and e2.polls == 1


def test_schedule_persists_and_follows_an_edited_sources_file(tmp_path):
    a, b = Source("a", ("http://127.0.0.1/a",), poll_interval_s=100), Source("b", ("http://127.0.0.1/b",))
    s = sch.initial_schedule([a, b], T0)
    assert sch.due_sources(s, T0) == ["a", "b"]
    s["a"] = sch.after_poll(s["a"], 100, T0, 0)  # 150 s
    sch.save_schedule(str(tmp_path), s)
    loaded = sch.load_schedule(str(tmp_path))
    assert loaded == s
    faster = Source("a", a.feeds, poll_interval_s=10)  # bounds now 2.5..40: the saved 150 s is clamped
    again = sch.initial_schedule([faster, b], T0, loaded)
    assert again["a"].interval_s == 40.0 and again["a"].next_due == T0 + timedelta(seconds=40)
    assert sch.due_sources(again, T0 + timedelta(seconds=39)) == ["b"]


def test_saved_times_in_the_future_or_without_an_offset_do_not_stop_polling():
    a = Source("a", ("http://127.0.0.1/a",), poll_interval_s=30)
    ahead = sch.SourceSchedule("a", 30.0, T0 + timedelta(hours=6), last_poll=T0 + timedelta(hours=6))
    s = sch.initial_schedule([a], T0, {"a": ahead})  # a clock that was 6 h ahead when it was saved
    assert s["a"].next_due <= T0 + timedelta(seconds=30) and sch.due_sources(s, T0 + timedelta(seconds=30)) == ["a"]
    naive = sch.SourceSchedule.from_json({"source_id": "a", "interval_s": 30, "next_due": "2026-01-01T00:00:00",
                                          "last_poll": "2026-01-01T00:00:00"})
    assert naive.next_due.tzinfo is not None and sch.due_sources({"a": naive}, T0) in ([], ["a"])


# --- how streaming mode runs -------------------------------------------------------------------------

def test_plan_picks_cycles_locally_and_the_graph_on_streaming_runners():
    assert ps.plan([], prism_cache=lambda: None).kind == "cycles"
    assert ps.plan(["--runner", "DirectRunner"], prism_cache=lambda: None).kind == "cycles"
    assert ps.plan(["--runner=DataflowRunner", "--project=p"], prism_cache=lambda: None).kind == "graph"
    assert ps.plan(["--runner=PortableRunner"], prism_cache=lambda: None).kind == "graph"
    given = ps.plan(["--prism_location=/opt/prism"], prism_cache=lambda: None)
    assert given.kind == "graph" and "--runner=PrismRunner" in given.beam_args
    cached = ps.plan([], prism_cache=lambda: "/cache/prism")
    assert cached.kind == "graph" and "--prism_location=/cache/prism" in cached.beam_args
    assert ps.plan(["--runner=DirectRunner"], prism_cache=lambda: "/cache/prism").kind == "cycles"
    assert "--streaming" not in ps.plan(["--streaming"], prism_cache=lambda: None).beam_args


# --- keyed state with expiry (TestStream on the BundleBasedDirectRunner) -----------------------------

def cand(n: int) -> Candidate:
    return Candidate("src", "http://127.0.0.1/feed", f"http://127.0.0.1/{n}", f"http://127.0.0.1/{n}", f"id{n}")


def test_first_sighting_drops_repeats_until_the_url_expires():
    stream = (Stream()
              .add_elements([TimestampedValue(cand(1), at(0)), TimestampedValue(cand(2), at(0)),
                             TimestampedValue(cand(9), at(0))])
              .advance_watermark_to(at(10))
              .add_elements([TimestampedValue(cand(1), at(20))])  # seen 20 s ago: dropped, expiry reset
              .advance_watermark_to(at(100))  # 1's timer now at 120: still remembered
              .add_elements([TimestampedValue(cand(1), at(100))])  # dropped again, expiry now 200
              .advance_watermark_to(at(300))  # expired
              .add_elements([TimestampedValue(cand(1), at(300)), TimestampedValue(cand(2), at(300))])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    prior = prior_of(p, PriorState(article_ids=frozenset({"id9"})))  # already stored: never emitted
    out = (p | stream | beam.Map(lambda c: (c.article_id, c))
           | beam.ParDo(st.FirstSighting(100.0), prior)
           | beam.Map(lambda c, ts=beam.DoFn.TimestampParam: (c.article_id, int(ts.micros // 1_000_000 - at(0)))))
    assert_that(out, equal_to([("id1", 0), ("id2", 0), ("id1", 300), ("id2", 300)]))
    p.run().wait_until_finish()


def test_a_feed_over_its_limit_yields_every_entry_over_successive_polls():
    """max_articles_per_poll in a running job: each poll takes the newest entries the job has not
    sent on yet (nor stored before it started), so older ones come with later polls."""
    from tests.servers import Reply, RouteServer

    with RouteServer() as server:
        items = "".join(f"<item><title>t{d}</title><link>{server.url(f'/n/{d}.html')}</link>"
                        f"<pubDate>{d:02d} Nov 2026 08:00:00 GMT</pubDate></item>" for d in range(1, 8))
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()
        feed_url = server.route("/feed.xml", Reply(200, body, {"Content-Type": "application/rss+xml", "ETag": '"v1"'}))
        source = Source(id="src", feeds=(feed_url,), poll_interval_s=20, max_articles_per_poll=2)
        start = Timestamp(int(time.time()))
        stream = Stream()
        for k in range(13):  # a tick every 5 s of event time for a minute
            stream = stream.add_elements([TimestampedValue(k, start + 5 * k)]).advance_watermark_to(start + 5 * k)
        p = streaming_pipeline()
        stored = PriorState(article_ids=frozenset({cand_id(server.url("/n/7.html"))}))
        polled = (p | stream.advance_watermark_to_infinity()
                  | beam.Map(lambda _: (feed_url, (source, feed_url))).with_output_types(ps.KEYED)
                  | beam.ParDo(st.PollWhenDue(FetchConfig(), True),
                               beam.pvalue.AsSingleton(p | beam.Create([{}]).with_output_types(typing.Any)),
                               prior_of(p, stored)).with_outputs(steps.DEAD, steps.FEED_STATE, main="candidates"))
        got = polled.candidates | beam.Map(lambda c: c.url.rsplit("/", 1)[1])
        assert_that(got, equal_to([f"{d}.html" for d in range(1, 7)]))  # each once; 7 was stored
        p.run().wait_until_finish()
        assert server.count("/feed.xml") >= 3


def article(n: int, body: str, fetched: datetime, source: str = "src") -> Article:
    return Article(article_id=f"a{n}", url=f"http://127.0.0.1/{n}", source_id=source, title=f"t{n}", body=body,
                   published_at=None, fetched_at=fetched, language="ar", content_hash=content_hash(body))


WORDS = [f"كلمة{i}" for i in range(400)]
BODY_A = " ".join(WORDS[:120])
BODY_NEAR = " ".join(WORDS[:110] + ["مختلفة"] * 3)  # the same story, a little edited
BODY_OTHER = " ".join(WORDS[200:320])


def test_exact_and_near_duplicate_state_expires():
    config = NearDupConfig()
    a1 = article(1, BODY_A, T0)
    a2 = article(2, BODY_NEAR, T0 + timedelta(seconds=30))  # near-dup of a1, within the window
    a3 = article(3, BODY_A, T0 + timedelta(seconds=40))  # exact copy of a1: dropped
    a4 = article(4, BODY_OTHER, T0 + timedelta(seconds=50))  # stored content: dropped
    a5 = article(5, BODY_NEAR + " أخرى", T0 + timedelta(seconds=1000))  # after both expired: new
    stream = (Stream()
              .add_elements([TimestampedValue(a, a.fetched_at.timestamp()) for a in (a1, a2, a3, a4)])
              .advance_watermark_to(at(900))
              .add_elements([TimestampedValue(a5, a5.fetched_at.timestamp())])
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    prior = prior_of(p, PriorState(content_hashes=frozenset({content_hash(BODY_OTHER)})))
    out = (p | stream
           | beam.Map(lambda a: (a.content_hash, a)) | "Exact" >> beam.ParDo(st.FirstContent(120.0), prior)
           | beam.Map(lambda a: (st.NEAR_KEY, a))
           | "Near" >> beam.ParDo(st.NearDuplicates(config, window_s=300.0, prune_every_s=100.0), prior)
           | beam.Map(lambda a: (a.article_id, a.duplicate_of)))
    assert_that(out, equal_to([("a1", None), ("a2", "a1"), ("a5", None)]))
    p.run().wait_until_finish()


def test_windows_write_readable_files_and_late_articles_land_in_their_fetch_day(tmp_path):
    """Two on-time windows, then the watermark passes midnight and an article fetched at 23:59:50
    arrives late: it is written in a late pane, under the dt= of the day it was fetched."""
    out = tmp_path / "out"
    cfg = RunConfig(sources=(), output=str(out), run_id="stream-test")
    settings = ps.StreamSettings(window_s=60.0, allowed_lateness_s=3600.0)
    early = [article(i, f"{BODY_OTHER} {i}", T0 + timedelta(seconds=10 * i)) for i in range(3)]
    late = article(9, f"{BODY_A} late", datetime(2026, 11, 24, 23, 59, 50, tzinfo=timezone.utc))
    after_midnight = article(7, f"{BODY_A} next", datetime(2026, 11, 25, 0, 1, tzinfo=timezone.utc))
    stamp = lambda a: TimestampedValue(a, a.fetched_at.timestamp())
    stream = (Stream()
              .add_elements([stamp(a) for a in early])
              .advance_watermark_to(at(60 * 9))  # 23:59: the 23:50 window is complete
              .add_elements([stamp(after_midnight)])
              .advance_watermark_to(datetime(2026, 11, 25, 0, 5, tzinfo=timezone.utc).timestamp())
              .add_elements([stamp(late)])  # its window (23:59-00:00) closed 5 minutes ago
              .advance_watermark_to_infinity())
    p = streaming_pipeline()
    articles = p | "Articles" >> stream
    dead = p | "NoDead" >> beam.Create([])
    written, _ = ps.write_stream(articles, dead, cfg, settings)
    p.run().wait_until_finish()
    files = sorted(out.glob("articles/**/*.parquet"))
    for f in files:
        pq.read_table(f)  # every file whole
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()
    by_id = {r["article_id"]: r for r in rows}
    assert sorted(by_id) == ["a0", "a1", "a2", "a7", "a9"] and len(rows) == 5
    assert str(by_id["a9"]["dt"]) == "2026-11-24" and str(by_id["a7"]["dt"]) == "2026-11-25"
    names = {f.name: f for f in files}
    late_file = next(n for n, f in names.items() if "a9" in pq.read_table(f).column("article_id").to_pylist())
    assert "-w20261124T235900-" in late_file  # its own window's files, not the 00:05 one
    assert len({n.split("-p")[0] for n in names}) >= 3  # one set of files per window


# --- the whole streaming graph, ticks from a TestStream ---------------------------------------------

def test_streaming_graph_polls_on_schedule_and_writes_every_item_once(tmp_path):
    with GrowingSite(sources=2, grow_on_poll=("grow0",)) as site:
        for _ in range(4):
            site.add()
        sources, problems = validate_text(site.sources_yaml(poll_interval=20))
        assert not problems
        out = tmp_path / "out"
        cfg = RunConfig(sources=tuple(sources), output=str(out), run_id=new_run_id(), allow_private_hosts=True)
        settings = ps.StreamSettings(window_s=60.0)
        start = Timestamp(int(time.time()))  # TestStream watermarks are whole milliseconds
        stream = Stream()
        for k in range(13):  # a tick every 5 s of event time for a minute
            stream = stream.add_elements([TimestampedValue(k, start + 5 * k)]).advance_watermark_to(start + 5 * k)
        stream = stream.advance_watermark_to_infinity()
        p = streaming_pipeline()
        ticks = p | "Ticks" >> stream
        ps.build_streaming_pipeline(p, cfg, settings, start=start, ticks=ticks)
        p.run().wait_until_finish()
        polls = {sid: site.requests.count(f"/{sid}/rss.xml") for sid in site.source_ids}
        rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url", "source"]).to_pylist()
        urls = [r["url"] for r in rows]
        assert len(urls) == len(set(urls))  # exactly once
        assert set(urls) == set(site.appeared)  # every item the feeds ever showed
        # the feeds' health is on file for `akhbar sources health`, from the last window's polls;
        # validators stay in the job's state (its latest items may not be committed yet)
        health = load_feed_states(str(out))
        assert set(health) == {f"{site.base_url}/{sid}/rss.xml" for sid in site.source_ids}
        for url, state in health.items():
            assert state.polls == site.requests.count(url[len(site.base_url):])
            assert state.last_status in (200, 304) and state.last_error is None  # grow1 is unchanged: 304s
            assert state.etag is None and state.last_modified is None and state.body_hash is None
    # grow0 finds a new item on every poll: polled every 10, then 5 s (at the floor of 20 s / 4);
    # grow1 finds nothing after its first poll: 10 s, then 15 s, then 22.5 s apart
    assert polls["grow0"] >= 9 and polls["grow1"] <= 5, polls


# --- the local cycle mode, end to end ----------------------------------------------------------------

def test_local_streaming_run_picks_up_items_added_while_it_runs(tmp_path, capsys):
    from akhbar.pipelines.cli import main

    with GrowingSite(sources=2) as site:
        for _ in range(4):
            site.add()
        src = tmp_path / "sources.yaml"
        src.write_text(site.sources_yaml(poll_interval=4), encoding="utf-8")
        stop = threading.Event()
        site.grow_every(1.5, stop)
        out = tmp_path / "out"
        t0 = time.monotonic()
        code = main(["run", "--sources", str(src), "--output", str(out), "--mode", "streaming", "--duration", "15",
                     "--allow-private-hosts", "--runner", "DirectRunner"])
        elapsed = time.monotonic() - t0
        stop.set()
        appeared = dict(site.appeared)
        seen_by_job_end = {u for u, t in appeared.items() if t < time.time() - elapsed + 8}
    captured = capsys.readouterr()
    assert code == 0 and elapsed < 40
    assert captured.err.count("bounded cycles") == 1  # told once which way it runs and why
    assert "duration reached" in captured.out
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert len(rows) == len(set(rows)) and seen_by_job_end <= set(rows)
    assert len(rows) > 4  # items added while it ran were written too
    assert (out / "_state" / "streaming.json").exists()
    # a restart against the same output re-emits nothing already stored
    code = main(["run", "--sources", str(src), "--output", str(out), "--mode", "streaming", "--duration", "3",
                 "--allow-private-hosts", "--quiet", "--runner", "DirectRunner"])
    again = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert code == 0 and len(again) == len(set(again)) and set(rows) <= set(again)


def test_streaming_options_are_checked(tmp_path, sample_site, capsys):
    from akhbar.pipelines.cli import main

    from akhbar.sample.site import sources_yaml

    src = tmp_path / "s.yaml"
    src.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    base = ["run", "--sources", str(src), "--output", str(tmp_path / "o")]
    assert main([*base, "--mode", "streaming", "--duration", "0"]) == 2
    assert main([*base, "--duration", "10"]) == 2  # batch has no duration
    assert "--duration" in capsys.readouterr().err


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_after_the_current_cycle(signame):
    import signal

    stopper = ps.Stopper(None)
    with stopper:
        threading.Timer(0.2, lambda: signal.raise_signal(getattr(signal, signame))).start()
        t0 = time.monotonic()
        while not stopper.stopping() and time.monotonic() - t0 < 5:
            stopper.wait(1.0)
    assert stopper.reason == signame and time.monotonic() - t0 < 2


def test_the_unbounded_graph_translates_for_a_portable_runner(tmp_path):
    """Not run (no Dataflow, cluster or Prism here): the graph with its real PeriodicImpulse is built
    and translated to the portable pipeline proto a streaming runner receives."""
    src = Source("a", ("http://127.0.0.1:9/feed.xml",), poll_interval_s=20)
    cfg = RunConfig(sources=(src,), output=str(tmp_path), run_id="graph-check")
    opts = PipelineOptions(["--streaming"])
    p = beam.Pipeline(options=opts)
    ps.build_streaming_pipeline(p, cfg, ps.StreamSettings(duration_s=60))
    proto = p.to_runner_api()
    shutil.rmtree(p.local_tempdir, ignore_errors=True)  # Beam removes it only in run()
    labels = {t.unique_name for t in proto.components.transforms.values()}
    for step in ("Ticks", "PollWhenDue", "FirstSighting", "FirstContent", "NearDuplicates", "ArticleWindows",
                 "WriteArticles", "WriteDeadLetters"):
        assert step in labels
    stateful = set()
    for t in proto.components.transforms.values():
        if t.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload)
            if payload.state_specs or payload.timer_family_specs:
                stateful.add(t.unique_name.split("/")[0])
    assert {"PollWhenDue", "FirstSighting", "FirstContent", "NearDuplicates"} <= stateful
    assert ps.default_tick(cfg) == 5.0


def test_sigterm_stops_a_running_job_cleanly(tmp_path):
    """A job without --duration, as a separate process: SIGTERM → the current cycle is written, exit 0."""
    import os
    import signal
    import subprocess
    import sys

    with GrowingSite(sources=1) as site:
        for _ in range(3):
            site.add()
        src = tmp_path / "sources.yaml"
        src.write_text(site.sources_yaml(poll_interval=2), encoding="utf-8")
        out = tmp_path / "out"
        env = {**os.environ, "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9",
               "GCE_METADATA_IP": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9"}
        proc = subprocess.Popen([sys.executable, "-m", "akhbar", "run", "--sources", str(src), "--output", str(out),
                                 "--mode", "streaming", "--allow-private-hosts", "--runner", "DirectRunner"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 60
            while not list(out.glob("articles/**/*.parquet")) and time.monotonic() < deadline:
                time.sleep(0.2)
            site.add()  # appears while the job runs; it may or may not be polled before the signal
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    assert "streaming stopped (SIGTERM)" in stdout and "SIGTERM: stopping after the current cycle" in stderr
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert len(rows) >= 3 and len(rows) == len(set(rows))
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.suffix == ".inprogress"]


def test_cycles_compact_their_small_files_while_running(tmp_path):
    """A site gaining an article every 0.5 s, a compaction due after every cycle: the job is stopped
    once three cycles have run and a merged file is there (within 60 s however busy the machine:
    it used to run a fixed 10 s, which a slow machine could fill with fewer than three cycles)."""
    import re
    import signal

    out = tmp_path / "out"

    def on_line(line: str) -> None:
        cycle = re.match(r"akhbar: cycle (\d+) ", line)
        if cycle and int(cycle.group(1)) >= 3 and any((out / "articles").rglob("part-compact-*.parquet")):
            signal.raise_signal(signal.SIGTERM)

    with GrowingSite(sources=1) as site:
        for _ in range(2):
            site.add()
        sources, _ = validate_text(site.sources_yaml(poll_interval=1))
        stop = threading.Event()
        site.grow_every(0.5, stop)
        cfg = RunConfig(sources=tuple(sources), output=str(out), run_id=new_run_id(), allow_private_hosts=True)
        totals = ps.run_cycles(cfg, [], ps.StreamSettings(duration_s=60, compact_every_s=0.1, compact_min_files=2),
                               log=on_line)
        stop.set()
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert totals["stopped_by"] == "SIGTERM", totals
    assert totals["cycles"] >= 3 and totals["partitions_compacted"] >= 1, totals
    assert len(rows) == len(set(rows)) == totals["articles_written"]


def _sources_yaml(*sites: GrowingSite, poll_interval: int) -> str:
    """One sources file for the outlets of several sites."""
    doc = {"sources": [s for site in sites for s in yaml.safe_load(site.sources_yaml(poll_interval))["sources"]]}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _readable_at(out) -> dict[str, float]:
    """url → when its row became readable: the modification time of its file (written, then renamed)."""
    seen = {}
    for path in sorted((out / "articles").rglob("*.parquet")):
        for url in pq.read_table(path, columns=["url"]).column("url").to_pylist():
            seen.setdefault(url, path.stat().st_mtime)
    return seen


def test_a_slow_site_does_not_hold_the_other_sources_up(tmp_path):
    """One outlet drips its feed over 24 s and each of its pages over 3 s; a fast outlet next to it
    (its own server) gains an article every 1.5 s. The fast outlet's articles are written on its own
    schedule while the slow one is still being polled, and the slow one's articles are written too."""
    with GrowingSite(sources=1) as fast, GrowingSite(sources=1, prefix="slow", seed=11, feed_delay=24,
                                                     page_delay=3) as slow:
        for _ in range(3):
            fast.add()
        for _ in range(2):
            slow.add()
        sources, problems = validate_text(_sources_yaml(fast, slow, poll_interval=2))
        assert not problems and [s.id for s in sources] == ["grow0", "slow0"]
        stop = threading.Event()
        fast.grow_every(1.5, stop)
        out = tmp_path / "out"
        cfg = RunConfig(sources=tuple(sources), output=str(out), run_id=new_run_id(), allow_private_hosts=True)
        t0 = time.time()
        totals = ps.run_cycles(cfg, [], ps.StreamSettings(duration_s=18, compact_every_s=None), quiet=True)
        stop.set()
        fast_items, slow_items = dict(fast.appeared), dict(slow.appeared)
        slow_feed = [(begun, done) for path, begun, done in slow.served if path == "/slow0/rss.xml"]
    readable = _readable_at(out)
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert len(rows) == len(set(rows)) == totals["articles_written"]  # each once
    assert set(slow_items) <= set(rows)  # the slow outlet's articles are written too
    # the fast outlet's rows became readable while the slow feed's first answer was still dripping
    first_slow_answer = slow_feed[0][1]
    assert slow_feed[0][0] - t0 < 2 and first_slow_answer - t0 > 20
    assert sum(1 for u in fast_items if readable.get(u, first_slow_answer) < first_slow_answer) >= 3
    # every fast article that appeared well before the stop was written, within 20 s (its interval is at most
    # 8 s, and a cycle takes a few seconds): the slow outlet's 24 s answers are not waited for
    due = {u: t for u, t in fast_items.items() if t < t0 + 12}
    assert due and set(due) <= set(rows)
    late = {u: round(readable[u] - t, 1) for u, t in due.items() if readable[u] - t > 20}
    assert not late, late
    # feed states committed for both outlets, without errors, the stream's report written. The fast
    # feed's last poll may have been a 304: adaptive polling brings its interval down to 1 s while
    # it gains an article every 1.5 s (it answers 304 to a poll with nothing new, the slow one has no
    # ETag and always answers 200)
    health = {s.source_id: s for s in load_feed_states(str(out)).values()}
    assert set(health) == {"grow0", "slow0"}
    statuses = {sid: (s.last_status, s.last_error, s.consecutive_failures) for sid, s in health.items()}
    assert statuses["slow0"] == (200, None, 0) and statuses["grow0"] in ((200, None, 0), (304, None, 0)), statuses
    report = out / "_reports" / f"run-stream-{cfg.run_id}.json"
    assert report.exists() and totals["per_source"]["slow0"] == 2 and totals["cycles"] >= 3


def test_a_job_killed_while_a_slow_poll_is_under_way_loses_nothing(tmp_path):
    """The fast outlet's rows and feed state are committed while the slow outlet's poll drips; the
    job is killed then: the slow feed's state was not saved (its articles were not written), so the
    restarted job polls it again and writes them, and nothing is written twice. The inbox file the
    killed job had prepared for its next cycle is removed by the restarted one."""
    import os
    import signal
    import subprocess
    import sys

    with GrowingSite(sources=1) as fast, GrowingSite(sources=1, prefix="slow", seed=11, feed_delay=15) as slow:
        for _ in range(3):
            fast.add()
        for _ in range(2):
            slow.add()
        src = tmp_path / "sources.yaml"
        src.write_text(_sources_yaml(fast, slow, poll_interval=2), encoding="utf-8")
        out = tmp_path / "out"
        temp = tmp_path / "tmp"  # the jobs' temporary folder
        temp.mkdir()
        env = {**os.environ, "TMPDIR": str(temp), "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9",
               "GCE_METADATA_IP": "127.0.0.1:9", "GCE_METADATA_ROOT": "127.0.0.1:9"}
        cmd = [sys.executable, "-m", "akhbar", "run", "--sources", str(src), "--output", str(out), "--mode", "streaming",
               "--allow-private-hosts", "--runner", "DirectRunner", "--quiet"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 60
            while not (out / "_state" / "feeds.json").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            answered = [p for p, _, _ in slow.served if p == "/slow0/rss.xml"]
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert not answered, "the slow feed answered before the fast outlet was written: no overlap to test"
        states = load_feed_states(str(out))
        assert [s.source_id for s in states.values()] == ["grow0"]  # the slow feed's state was not saved
        rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
        assert set(rows) == set(fast.appeared) and not set(rows) & set(slow.appeared)
        # whatever inbox the kill left (the one prepared for the next cycle, or the one being run),
        # and one of another job that was killed earlier, are removed by the next job
        (temp / f"akhbar-cycle-{_pid_of_ended_process()}-run-x.pickle").write_bytes(b"pages")
        again = subprocess.run([*cmd, "--duration", "1"], capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0, again.stderr[-2000:]
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert len(rows) == len(set(rows)) and set(rows) == set(fast.appeared) | set(slow.appeared)
    assert {s.source_id for s in load_feed_states(str(out)).values()} == {"grow0", "slow0"}
    assert not list(temp.glob("akhbar-cycle-*.pickle"))


def _pid_of_ended_process() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_the_inboxes_of_ended_processes_are_removed(tmp_path):
    import os

    from akhbar.transforms.gather import new_inbox, remove_inbox, remove_stale_inboxes

    dead = tmp_path / f"akhbar-cycle-{_pid_of_ended_process()}-run-a.pickle"
    mine = tmp_path / f"akhbar-cycle-{os.getpid()}-run-b.pickle"
    older = tmp_path / "akhbar-cycle-run-c.pickle"  # not named after a process: left alone
    for path in (dead, mine, older):
        path.write_bytes(b"")
    assert remove_stale_inboxes(str(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, older.name])
    made = new_inbox("run-d")
    remove_inbox(made)
    assert os.path.basename(made).startswith(f"akhbar-cycle-{os.getpid()}-run-d-")


def _quiet_cycles(doc: dict, out, duration_s: float) -> dict:
    """Local streaming cycles over the sources of ``doc`` (a sources file as a dict) into ``out``."""
    sources, problems = validate_text(yaml.safe_dump(doc))
    assert not problems
    cfg = RunConfig(sources=tuple(sources), output=str(out), run_id=new_run_id(), allow_private_hosts=True)
    return ps.run_cycles(cfg, [], ps.StreamSettings(duration_s=duration_s, compact_every_s=None), quiet=True)


def test_an_article_two_sources_list_is_written_once_when_their_polls_end_in_different_cycles(tmp_path):
    """A second source's feed lists the first outlet's articles and answers after 5 s, when the first
    source's cycle has written them: its gather does not fetch them again (it was polled before they
    were stored, so only what the job has written since tells it), and nothing is written twice."""
    from tests.servers import Reply, RouteServer

    with GrowingSite(sources=1) as site, RouteServer() as mirror:
        urls = [site.add() for _ in range(3)]
        items = "".join(f"<item><title>t</title><link>{u}</link></item>" for u in urls)
        mirror.route("/rss.xml", Reply(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>m</title>'
                                            f"{items}</channel></rss>".encode(),
                                       {"Content-Type": "application/rss+xml"}, delay=5))
        doc = yaml.safe_load(site.sources_yaml(poll_interval=60))
        doc["sources"].append({"id": "mirror", "feeds": [mirror.url("/rss.xml")], "poll_interval": 60,
                               "min_interval": 0, "obey_robots": False})
        out = tmp_path / "out"
        totals = _quiet_cycles(doc, out, duration_s=3)
        fetched = [path for path in site.requests if path.endswith(".html")]
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url", "source"]).to_pylist()
    assert sorted(r["url"] for r in rows) == sorted(urls) and {r["source"] for r in rows} == {"grow0"}
    assert len(fetched) == 3  # by the first source only
    assert totals["cycles"] == 1 and totals["polls"] == 2 and totals["per_source"] == {"grow0": 3, "mirror": 0}
    assert not (out / "dead_letter").exists() or not list((out / "dead_letter").rglob("*.parquet"))


def test_two_sources_polled_together_fetch_a_page_they_both_list_once(tmp_path):
    """Two aggregator feeds list the same 3 articles and answer at the same moment: the first gather
    to reach them takes them, the other leaves them to it; each page is fetched and written once."""
    from tests.servers import Reply, RouteServer

    with GrowingSite(sources=1) as site, RouteServer() as one, RouteServer() as two:
        urls = [site.add() for _ in range(3)]
        items = "".join(f"<item><title>t</title><link>{u}</link></item>" for u in urls)
        feed = Reply(200, f'<?xml version="1.0"?><rss version="2.0"><channel><title>m</title>{items}</channel></rss>'
                     .encode(), {"Content-Type": "application/rss+xml"}, delay=1)
        one.route("/rss.xml", feed)
        two.route("/rss.xml", feed)
        doc = {"sources": [{"id": name, "feeds": [server.url("/rss.xml")], "poll_interval": 60, "min_interval": 0,
                            "obey_robots": False} for name, server in (("one", one), ("two", two))]}
        out = tmp_path / "out"
        totals = _quiet_cycles(doc, out, duration_s=1)
        fetched = [path for path in site.requests if path.endswith(".html")]
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert sorted(rows) == sorted(urls) and len(fetched) == len(set(fetched)) == 3
    assert totals["polls"] == 2 and sum(totals["per_source"].values()) == 3


def test_feed_health_keeps_the_validators_on_file_and_ignores_older_updates(tmp_path):
    from datetime import datetime, timedelta, timezone

    from akhbar.transforms.feedstate import FeedState, save_feed_health

    t0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    on_file = FeedState("https://a.example/rss", "a", etag='"v1"', last_modified="Tue, 24 Nov 2026 11:00:00 GMT",
                        body_hash="h1", last_attempt=t0, last_status=200, polls=7, linkless=("k1",))
    newer = FeedState("https://a.example/rss", "a", etag='"v2"', body_hash="h2", last_attempt=t0 + timedelta(minutes=5),
                      last_status=500, last_error="http_500", consecutive_failures=1, polls=8, linkless=("k1", "k2"))
    fresh = FeedState("https://b.example/rss", "b", etag='"b1"', body_hash="hb", last_attempt=t0, last_status=200,
                      polls=1, linkless=("k3",))
    written = save_feed_health(str(tmp_path), {on_file.feed_url: on_file}, [newer, fresh])
    assert load_feed_states(str(tmp_path)) == written
    a, b = written["https://a.example/rss"], written["https://b.example/rss"]
    assert (a.last_status, a.last_error, a.polls) == (500, "http_500", 8)  # the health is the update's
    assert (a.etag, a.last_modified, a.body_hash) == ('"v1"', on_file.last_modified, "h1")  # validators on file
    assert (b.etag, b.body_hash, b.polls) == (None, None, 1)  # none on file: none written
    # so are the link-less entries reported: their dead letters may still be in an open window
    assert (a.linkless, b.linkless) == (("k1",), ())
    # a late window's older state changes nothing
    again = save_feed_health(str(tmp_path), written, [on_file.replace(polls=6)])
    assert again["https://a.example/rss"] == a


def test_cycles_take_a_feed_over_its_limit_a_few_entries_per_poll(server, tmp_path):
    """max_articles_per_poll in local cycles: each gather leaves out the entries already stored
    before applying the limit, so a feed listing 5 entries, limit 2, has them all written over
    three polls, each page fetched once, although the feed never changes."""
    import re
    import signal

    from tests.servers import route_dated_feed

    feed_url = route_dated_feed(server, 5)
    source = Source(id="outlet", feeds=(feed_url,), poll_interval_s=1, max_articles_per_poll=2)
    out = tmp_path / "out"
    per_cycle: list[int] = []

    def on_line(line: str) -> None:
        rows = re.search(r": (\d+) rows", line)
        if rows:
            per_cycle.append(int(rows.group(1)))
            if sum(per_cycle) >= 5:
                signal.raise_signal(signal.SIGTERM)  # a clean stop, as from outside

    cfg = RunConfig(sources=(source,), output=str(out), run_id=new_run_id(), allow_private_hosts=True,
                    fetch=FetchConfig(host_interval=0))
    totals = ps.run_cycles(cfg, [], ps.StreamSettings(duration_s=45, compact_every_s=None), log=on_line)
    assert totals["stopped_by"] == "SIGTERM", totals
    assert per_cycle == [2, 2, 1]
    urls = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == [f"{d}.html" for d in range(1, 6)]
    assert all(server.count(f"/n/{d}.html") == 1 for d in range(1, 6))
    assert load_feed_states(str(out))[feed_url].backlog == 0


def test_cycles_give_up_on_a_page_that_keeps_failing(server, tmp_path):
    """A feed that changes at every poll keeps listing a page that answers 404: with
    --give-up-after 0, local cycles fetch it at 3 polls (each cycle's dead letters are read back),
    then leave it out."""
    import signal

    from tests.servers import Reply

    polls = []

    def feed(handler):
        polls.append(1)
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
                f"<lastBuildDate>Mon, 30 Nov 2026 00:00:{len(polls):02d} GMT</lastBuildDate><item><title>t</title>"
                f"<link>{server.url('/n/gone.html')}</link></item></channel></rss>")
        return Reply(200, body.encode(), {"Content-Type": "application/rss+xml"})

    server.route("/feed.xml", feed)
    server.route("/n/gone.html", Reply(404, b"not here"))
    source = Source(id="outlet", feeds=(server.url("/feed.xml"),), poll_interval_s=1)
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if "nothing new" in line:
            signal.raise_signal(signal.SIGTERM)

    cfg = RunConfig(sources=(source,), output=str(tmp_path / "out"), run_id=new_run_id(), allow_private_hosts=True,
                    fetch=FetchConfig(host_interval=0, retries=0), give_up_after_hours=0)
    totals = ps.run_cycles(cfg, [], ps.StreamSettings(duration_s=60, compact_every_s=None), log=on_line)
    assert totals["stopped_by"] == "SIGTERM", (totals, lines)
    assert totals["cycles"] == 3 and totals["dead_letters"] == 3 and len(polls) == 4
    assert server.count("/n/gone.html") == 3
