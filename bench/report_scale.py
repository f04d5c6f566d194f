#!/usr/bin/env python3
"""What `akhbar report` costs on a long-lived output: wall time and peak memory.

    python bench/report_scale.py --workdir /tmp/report-bench [--files 2000] [--rows 100] [--days 365]
                                 [--since YYYY-MM-DD]

Writes a synthetic output once (``--files`` articles files of ``--rows`` rows, one source of 20 and
one day of ``--days`` per file, as scheduled runs leave them; every tenth article a near-duplicate
of an earlier one, a tenth on each topic; a dead-letter file every fifth file), kept in
``--workdir`` for later runs with the same sizes, then runs ``akhbar report`` on it in a fresh
process and prints its wall time and peak RSS. Touches no network.
"""
from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

TITLE = "اجتماع وزراء خارجية حلف شمال الأطلسي في بروكسل لبحث المساعدات العسكرية لأوكرانيا"


def fill(output: Path, files: int, rows_per_file: int, days: int) -> None:
    from akhbar.schemas.arrow import ARTICLES_SCHEMA, DEAD_LETTER_SCHEMA, article_row, dead_letter_row
    from akhbar.schemas.records import Article, DeadLetter
    from akhbar.transforms.sink import write_partition

    rng = random.Random(1)
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    ids: list[str] = []
    for f in range(files):
        when = now - timedelta(days=f % days)
        day, source, run = when.date().isoformat(), f"source{f % 20:02d}", f"r{f}"
        rows = []
        for i in range(rows_per_file):
            aid = f"{f:08x}{i:08x}{rng.getrandbits(64):016x}"
            rows.append(article_row(Article(
                article_id=aid, url=f"https://www.{source}.example.com/news/{f}/{i}/{aid[:12]}-slug.html",
                source_id=source, title=f"{TITLE} {f} {i}", body="نص", published_at=when - timedelta(hours=i % 24),
                fetched_at=when, language="ar", content_hash=f"h{aid}", run_id=run,
                duplicate_of=rng.choice(ids) if ids and rng.random() < 0.1 else None,
                topics=tuple(t for t in ("nato", "ukraine") if rng.random() < 0.1))))
            ids.append(aid)
        write_partition(str(output / "articles" / f"dt={day}" / f"source={source}"), rows, ARTICLES_SCHEMA, run,
                        "article_id")
        if f % 5 == 0:
            letters = [dead_letter_row(DeadLetter(url=f"https://ex.com/gone/{f % 50}/{i}", source_id=source,
                                                  stage="fetch", reason="http_404", message="m", time=when, run_id=run))
                       for i in range(5)]
            write_partition(str(output / "dead_letter" / f"dt={day}"), letters, DEAD_LETTER_SCHEMA, run, "url")


def output_arguments(ap: argparse.ArgumentParser) -> None:
    """The options that size the synthetic output (this script's and ``state_scale.py``'s)."""
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=100, help="rows per file")
    ap.add_argument("--days", type=int, default=365)


def synthetic_output(args) -> Path:
    """The output those options name under ``--workdir``, written by :func:`fill` if not there yet."""
    output = args.workdir / f"out-{args.files}x{args.rows}-{args.days}d"
    if not (output / "articles").exists():
        t0 = time.perf_counter()
        fill(output, args.files, args.rows, args.days)
        print(f"wrote {args.files * args.rows:,} rows in {args.files:,} files in {time.perf_counter() - t0:.0f} s")
    return output


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    output_arguments(ap)
    ap.add_argument("--since", help="the report's --since (default: the whole output)")
    args = ap.parse_args(argv)
    output = synthetic_output(args)
    cmd = [sys.executable, "-m", "akhbar", "report", str(output), "--out", str(args.workdir / "report.html")]
    if args.since:
        cmd += ["--since", args.since]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"akhbar report over {args.files * args.rows:,} rows ({args.files:,} files, {args.days} days"
          f"{', since ' + args.since if args.since else ''}): {wall:.1f} s, peak RSS {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
