#!/usr/bin/env python3
"""Acceptance run of ``akhbar run --mode streaming`` against a loopback site whose feeds grow.

Serves :class:`akhbar.sample.growing.GrowingSite` on 127.0.0.1 (new article every ``--every``
seconds, outlets in turn, each appearance time recorded), runs ``akhbar run --mode streaming
--duration D`` as a subprocess and meanwhile:

* every ``--poll`` seconds lists ``articles/`` and reads every Parquet file it has not read yet with
  pyarrow (an unreadable file at any moment is a failure) and the whole dataset with
  ``pyarrow.dataset`` (hive partitioning); records when each article URL first became readable;
* samples the RSS of the akhbar process and its children every 2 s.

Then it checks that every item that appeared before the run's last minute was written exactly
once, reports the latency from appearance to readable Parquet (p50/p95/max), peak RSS per
minute, and restarts the job against the same output (``--restart-duration`` seconds, no new
items) to count rows re-emitted for articles already stored (must be 0).

With ``--slow-feed S`` (and/or ``--slow-pages S``) one more outlet, on a server (host and port) of
its own, answers its feed (its article pages) only after S seconds and gains an article as often
as each fast outlet; the latency of the fast outlets is then reported apart from the slow one's
(how much a slow site holds the others up).

    python bench/streaming_e2e.py [--duration 200] [--every 2] [--poll-interval 20] [--json OUT.json]
        [--slow-feed S] [--slow-pages S] [-- extra akhbar run args]

Only 127.0.0.1 is contacted.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

from akhbar.sample.growing import GrowingSite
from proctree import tree_rss_kb

ENV = {**os.environ, "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
       "GCE_METADATA_ROOT": "127.0.0.1:9"}


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and all its descendants (from /proc), in MiB."""
    return sum(tree_rss_kb(pid)) / 1024


class Watcher:
    """Reads every new Parquet file as soon as it is visible; samples RSS."""

    def __init__(self, out: Path, pid: int, poll: float):
        self.out, self.pid, self.poll = out, pid, poll
        self.readable: dict[str, float] = {}  # url -> first time readable
        self.files: set[str] = set()
        self.unreadable: list[tuple[str, str]] = []
        self.dataset_failures: list[str] = []
        self.rss: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.dataset_reads = 0

    def scan(self) -> None:
        root = self.out / "articles"
        if not root.exists():
            return
        for path in root.rglob("*.parquet"):
            if any(part.startswith((".", "_")) for part in path.relative_to(root).parts):
                continue
            key = str(path)
            if key in self.files:
                continue
            try:
                urls = pq.read_table(path, columns=["url"]).column("url").to_pylist()
            except FileNotFoundError:
                continue  # replaced by a compaction between listing and reading
            except Exception as e:
                self.unreadable.append((key, f"{type(e).__name__}: {e}"))
                continue
            now = time.time()
            self.files.add(key)
            for u in urls:
                self.readable.setdefault(u, now)

    def read_dataset(self) -> None:
        root = self.out / "articles"
        if root.exists():
            try:
                dataset = ds.dataset(str(root), partitioning="hive")
                if not dataset.files:  # the folder exists, nothing committed yet: no column to read
                    return
                dataset.to_table(columns=["url"])
                self.dataset_reads += 1
            except Exception as e:
                self.dataset_failures.append(f"{type(e).__name__}: {e}")

    def run(self) -> None:
        t0, last_rss, last_ds = time.time(), 0.0, 0.0
        while not self.stop.is_set():
            self.scan()
            now = time.time()
            if now - last_rss >= 2:
                self.rss.append((now - t0, tree_rss_mb(self.pid)))
                last_rss = now
            if now - last_ds >= 5:
                self.read_dataset()
                last_ds = now
            self.stop.wait(self.poll)
        self.scan()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(round(q * (len(v) - 1))))], 2)


def run_job(sources: Path, out: Path, duration: float, extra: list[str], poll: float) -> tuple[dict, Watcher]:
    cmd = [sys.executable, "-m", "akhbar", "run", "--sources", str(sources), "--output", str(out), "--mode", "streaming",
           "--duration", str(duration), "--allow-private-hosts", *extra]
    if not any(a.startswith("--runner") for a in extra):
        cmd += ["--runner", "DirectRunner"]  # the local mode, even where a Prism binary is cached
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    watcher = Watcher(out, proc.pid, poll)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    stdout, stderr = proc.communicate()
    watcher.stop.set()
    thread.join()
    return {"exit_code": proc.returncode, "started": t0, "ended": time.time(), "stdout": stdout, "stderr": stderr}, watcher


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=200)
    ap.add_argument("--every", type=float, default=2.0, help="seconds between new articles (outlets in turn)")
    ap.add_argument("--sources", type=int, default=3, help="outlets (one feed each)")
    ap.add_argument("--poll-interval", type=int, default=20, help="poll_interval of every source (s)")
    ap.add_argument("--restart-duration", type=float, default=30)
    ap.add_argument("--poll", type=float, default=0.5, help="seconds between scans of the output")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--slow-feed", type=float, default=0.0, help="add a slow outlet whose feed answers after S s")
    ap.add_argument("--slow-pages", type=float, default=0.0, help="…whose article pages answer after S s")
    args, extra = ap.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="akhbar-stream-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    with ExitStack() as stack:
        site = stack.enter_context(GrowingSite(sources=args.sources, feed_size=60))
        slow = None
        if args.slow_feed or args.slow_pages:
            slow = stack.enter_context(GrowingSite(sources=1, feed_size=60, seed=11, prefix="slow",
                                                   feed_delay=args.slow_feed, page_delay=args.slow_pages))
        for _ in range(2 * args.sources):
            site.add()
        sources = work / "sources.yaml"
        doc = yaml.safe_load(site.sources_yaml(args.poll_interval))
        if slow is not None:
            slow.add()
            doc["sources"] += yaml.safe_load(slow.sources_yaml(args.poll_interval))["sources"]
        sources.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        stop = threading.Event()
        site.grow_every(args.every, stop)
        if slow is not None:
            slow.grow_every(args.every * args.sources, stop)  # as often as each fast outlet
        job, w = run_job(sources, out, args.duration, extra, args.poll)
        stop.set()
        fast_urls = set(site.appeared)
        appeared = {**site.appeared, **(slow.appeared if slow is not None else {})}
        final = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
        counts = Counter(final)
        cutoff = job["ended"] - 60
        due = [u for u, t in appeared.items() if t < cutoff]
        missing = [u for u in due if counts[u] == 0]
        twice = {u: n for u, n in counts.items() if n > 1}
        lat = [w.readable[u] - appeared[u] for u in appeared if u in w.readable]
        lat_fast = [w.readable[u] - appeared[u] for u in fast_urls if u in w.readable]
        lat_slow = [w.readable[u] - appeared[u] for u in appeared if u in w.readable and u not in fast_urls]
        t_rss = w.rss
        minutes = {}
        for m in range(int(args.duration // 60) + 1):
            vals = [r for t, r in t_rss if m * 60 <= t < (m + 1) * 60]
            if vals:
                minutes[f"minute_{m + 1}"] = {"peak_mb": round(max(vals), 1), "mean_mb": round(sum(vals) / len(vals), 1)}

        # restart against the same output, no new items: nothing already stored may be written again
        before = set(final)
        n_before = len(final)
        job2, w2 = run_job(sources, out, args.restart_duration, extra, args.poll)
        after = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
        after_counts = Counter(after)
        re_emitted = sum(n - 1 for u, n in after_counts.items() if u in before and n > 1)
        new_in_restart = len(after) - n_before - re_emitted
    cycles_line = [line for line in job["stdout"].splitlines() if line.startswith("akhbar: streaming stopped")]
    result = {
        "duration_s": args.duration, "every_s": args.every, "sources": args.sources, "poll_interval_s": args.poll_interval,
        "exit_code": job["exit_code"], "wall_s": round(job["ended"] - job["started"], 1),
        "items_appeared": len(appeared), "items_due": len(due), "rows_written": len(final),
        "missing_due": len(missing), "written_more_than_once": len(twice),
        "latency_s": {"n": len(lat), "p50": pct(lat, 0.5), "p95": pct(lat, 0.95), "max": pct(lat, 1.0),
                      "min": pct(lat, 0.0)},
        **({"slow_outlet": {"feed_delay_s": args.slow_feed, "page_delay_s": args.slow_pages},
            "latency_fast_outlets_s": {"n": len(lat_fast), "p50": pct(lat_fast, 0.5), "p95": pct(lat_fast, 0.95),
                                       "max": pct(lat_fast, 1.0)},
            "latency_slow_outlet_s": {"n": len(lat_slow), "p50": pct(lat_slow, 0.5), "p95": pct(lat_slow, 0.95),
                                      "max": pct(lat_slow, 1.0)}} if slow is not None else {}),
        "files_seen": len(w.files), "unreadable_files": w.unreadable[:10], "dataset_reads_ok": w.dataset_reads,
        "dataset_read_failures": w.dataset_failures[:10],
        "rss_by_minute": minutes,
        "restart": {"exit_code": job2["exit_code"], "duration_s": args.restart_duration, "re_emitted_rows": re_emitted,
                    "new_rows": new_in_restart, "unreadable_files": w2.unreadable[:10]},
        "summary_line": cycles_line[0] if cycles_line else None,
        "workdir": str(work),
    }
    m1, m3 = minutes.get("minute_1"), minutes.get("minute_3")
    if m1 and m3:
        result["rss_peak_change_minute1_to_3"] = round(m3["peak_mb"] / m1["peak_mb"] - 1, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    if job["exit_code"] != 0 or job2["exit_code"] != 0:
        print(job["stderr"][-3000:], job2["stderr"][-3000:], file=sys.stderr)
    ok = (job["exit_code"] == 0 and not missing and not twice and not w.unreadable and not w.dataset_failures
          and re_emitted == 0 and job2["exit_code"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
