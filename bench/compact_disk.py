#!/usr/bin/env python3
"""Disk used by an output that is compacted while it grows: live rows against what compaction
keeps on the side (placeholders, staging), over a simulated day or more.

    python bench/compact_disk.py [--eval-dir ../shared/eval] [--hours 24] [--sources 10]
                                 [--cycle-min 10] [--rows 2] [--compact-every-min 10] [--min-files 10]

The workload is local streaming mode's: every ``--cycle-min`` minutes each of ``--sources``
sources commits one file of ``--rows`` articles into today's partition (``dt=…/source=…``), and
every ``--compact-every-min`` minutes every partition with at least ``--min-files`` small files is
compacted (``akhbar run --mode streaming`` defaults: 10 minutes, 10 files). ``--min-files 2
--compact-every-min 60`` is an hourly ``akhbar compact`` from cron instead. Days roll over: a new
``dt=`` starts every 24 simulated hours.

Time is simulated so that a day takes seconds, not a day: after every step each file touched by
it gets the simulated time as its modification time, and compaction is given the simulated
``now``, so placeholders and staging folders age exactly as they would (the hour they are kept
for is simulated too). Bodies are ANT articles (real Arabic news) with ``--eval-dir``, otherwise
synthetic text drawn from the words of the bundled sample articles.

Disk use is the space the files take (``st_blocks``, each inode counted once, hard links
included) under ``articles/`` and ``_state/compact/``; "live" is the part in files that hold
rows. Printed: the peak and the end-of-run totals, and their ratio to the live data.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq

from akhbar.schemas.arrow import ARTICLES_SCHEMA, article_row
from akhbar.schemas.records import Article
from akhbar.transforms import compact as C
from akhbar.transforms.dedup import content_hash
from akhbar.transforms.sink import write_partition


def body_source(eval_dir: str | None, seed: int = 7):
    rng = random.Random(seed)
    if eval_dir:
        texts = []
        with gzip.open(Path(eval_dir) / "articles" / "ant_multisource_v2.1.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["text"])
                if len(texts) >= 20_000:
                    break
        return lambda: rng.choice(texts), "ANT article bodies"
    from akhbar.sample.growing import _vocabulary

    vocab = _vocabulary()
    return lambda: " ".join(rng.choice(vocab) for _ in range(rng.randint(150, 450))), "synthetic bodies"


def disk_use(out: Path) -> dict[str, int]:
    """Bytes allocated under articles/ and _state/compact/, each inode once; split into files
    with rows (live), zero-row files (placeholders) and the staging folders."""
    seen: set[int] = set()
    use = {"live": 0, "placeholders": 0, "staging": 0}
    for sub, kind in (("articles", None), (os.path.join("_state", "compact"), "staging")):
        for folder, _, files in os.walk(out / sub):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                if st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
                size = st.st_blocks * 512
                if kind:
                    use[kind] += size
                elif name.endswith(".parquet") and not name.startswith("."):
                    use["live" if pq.read_metadata(path).num_rows else "placeholders"] += size
    use["total"] = sum(use.values())
    return use


def age_to(out: Path, now: float) -> None:
    """Give every file and folder touched since the last step the simulated time ``now``."""
    for folder, dirs, files in os.walk(out):
        for name in files + dirs:
            path = os.path.join(folder, name)
            try:
                if os.stat(path, follow_symlinks=False).st_mtime > now:
                    os.utime(path, (now, now), follow_symlinks=False)
            except FileNotFoundError:
                pass


def compact_all(out: Path, now: float, min_files: int) -> int:
    C.remove_stale_staging(str(out), now=now)
    done = 0
    for dataset, partition in C.find_partitions(str(out)):
        r = C.compact_partition(str(out), dataset, partition, min_files=min_files, now=now)
        done += r.status == "compacted"
    return done


def run(args) -> dict:
    next_body, bodies = body_source(args.eval_dir)
    out = Path(args.out or tempfile.mkdtemp(prefix="compact-disk-"))
    during = {"total": 0}
    swap = C.exchange

    def measured_swap(a: str, b: str) -> None:  # the moment of a compaction that holds the most
        nonlocal during
        swap(a, b)
        use = disk_use(out)
        if use["total"] > during["total"]:
            during = use

    C.exchange = measured_swap
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    sim0 = time.time() - (args.hours + 2) * 3600  # always in the past: real writes look newer
    steps = int(args.hours * 60 // args.cycle_min)
    n = 0
    peak = {"total": 0}
    compactions = 0
    t0 = time.monotonic()
    for step in range(steps + 1):
        minute = step * args.cycle_min
        when = start + timedelta(minutes=minute)
        now = sim0 + minute * 60
        for s in range(args.sources):
            rows = []
            for _ in range(args.rows):
                n += 1
                text = f"{next_body()} {n}"
                rows.append(article_row(Article(
                    article_id=f"{n:032x}", url=f"https://s{s}.example/{n}", source_id=f"s{s}", title=f"خبر {n}",
                    body=text, published_at=when, fetched_at=when, language="ar", content_hash=content_hash(text),
                    topics=(), nato_score=0.0, ukraine_score=0.0, run_id=f"run{step}")))
            folder = out / "articles" / f"dt={when.date()}" / f"source=s{s}"
            write_partition(str(folder), rows, ARTICLES_SCHEMA, f"{when:%Y%m%dT%H%M%S}", "article_id")
        age_to(out, now)
        if step and minute % args.compact_every_min == 0:
            compactions += compact_all(out, now, args.min_files)
            age_to(out, now)
        use = disk_use(out)
        if use["total"] > peak["total"]:
            peak = {**use, "hour": round(minute / 60, 2)}
    # the output an hour after the last step, once one more compaction has run
    now = sim0 + (steps * args.cycle_min + 61) * 60
    compact_all(out, now, args.min_files)
    age_to(out, now)
    end = disk_use(out)
    files = sum(1 for p in (out / "articles").rglob("*.parquet") if pq.read_metadata(p).num_rows)
    C.exchange = swap
    return {"bodies": bodies, "articles": n, "compactions": compactions, "peak": peak, "during": during, "end": end,
            "live_files_at_end": files, "seconds": round(time.monotonic() - t0, 1), "output": str(out)}


def mib(b: int) -> str:
    return f"{b / 2**20:.1f} MiB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir")
    ap.add_argument("--out", help="output folder (default: a new temporary folder)")
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--sources", type=int, default=10)
    ap.add_argument("--cycle-min", type=int, default=10)
    ap.add_argument("--rows", type=int, default=2)
    ap.add_argument("--compact-every-min", type=int, default=10)
    ap.add_argument("--min-files", type=int, default=10)
    args = ap.parse_args(argv)
    r = run(args)
    p, e = r["peak"], r["end"]
    print(f"{r['articles']} articles ({r['bodies']}), {args.sources} sources, a file per source every "
          f"{args.cycle_min} min, compaction every {args.compact_every_min} min (min {args.min_files} files), "
          f"{args.hours:g} h simulated: {r['compactions']} partition compactions in {r['seconds']} s")
    print(f"  peak (hour {p['hour']}): {mib(p['total'])} on disk for {mib(p['live'])} live "
          f"({p['total'] / max(p['live'], 1):.2f}x; placeholders {mib(p['placeholders'])}, staging {mib(p['staging'])})")
    d = r["during"]
    print(f"  largest moment inside a compaction (just after its swap): {mib(d['total'])} "
          f"({d['total'] / max(d['live'], 1):.2f}x the live data then)")
    print(f"  end + 1 h: {mib(e['total'])} on disk for {mib(e['live'])} live ({e['total'] / max(e['live'], 1):.2f}x), "
          f"{r['live_files_at_end']} files with rows")
    print(f"  output: {r['output']}")
    json.dump(r, sys.stderr)
    print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
