#!/usr/bin/env python3
"""Near-duplicates end to end: the labelled pairs served as pages of their sources and ingested.

Builds a site with ``eval/tools/make_site.py`` from the articles of ``pairs/dev.tsv`` plus, as
context, the other articles the same outlets published in the ``--context-days`` days before each
pair (a deployment polls those outlets every day, and per-source boilerplate is learned from what
it has seen; ``--context-days 0`` serves the pair articles alone). Serves it on 127.0.0.1, runs
``akhbar run`` once and scores every labelled pair from the Parquet output: a pair counts as
flagged when both articles end in one cluster (one's ``duplicate_of`` is the other, they share a
``duplicate_of``, or one was dropped as an exact copy of the other).

    python bench/dedup_e2e.py --eval-dir ../shared/eval [--context-days 3] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from e2e_eval import free_port, run_akhbar, wait_for  # noqa: E402

from akhbar.transforms.dedup import content_hash  # noqa: E402
from akhbar.transforms.urls import canonical_url  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--context-days", type=int, default=3)
    ap.add_argument("--workdir")
    args, extra = ap.parse_known_args(argv)
    ev = Path(args.eval_dir)
    pairs = list(csv.DictReader(open(ev / "pairs" / "dev.tsv", encoding="utf-8"), delimiter="\t"))
    pair_ids = {p[k] for p in pairs for k in ("a", "b")}
    articles = {}
    with gzip.open(ev / "articles" / "ant_multisource_v2.1.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if (d.get("text") or "").strip() and d.get("time"):
                articles[d["docno"]] = d
    when = {k: parsedate_to_datetime(d["time"]) for k, d in articles.items()}
    ids = set(pair_ids)
    if args.context_days:
        windows = defaultdict(list)  # source -> [(start, end)]
        for p in pairs:
            for k in ("a", "b"):
                if p[k] in articles:
                    end = when[p[k]]
                    windows[articles[p[k]]["src"]].append((end - timedelta(days=args.context_days), end))
        for k, d in articles.items():
            if any(s <= when[k] <= e for s, e in windows.get(d["src"], ())):
                ids.add(k)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="akhbar-dedup-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "ids.txt").write_text("\n".join(sorted(ids)), encoding="utf-8")
    port = free_port()
    site, out = work / "site", work / "out"
    subprocess.run([sys.executable, str(ev / "tools" / "make_site.py"), "build", "--articles",
                    str(ev / "articles" / "ant_multisource_v2.1.jsonl.gz"), "--ids", str(work / "ids.txt"),
                    "--out", str(site), "--base-url", f"http://127.0.0.1:{port}"], check=True)
    server = subprocess.Popen([sys.executable, str(ev / "tools" / "make_site.py"), "serve", "--dir", str(site),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        result = run_akhbar(site / "sources.yaml", out, [a for a in extra if a != "--"])
    finally:
        server.terminate()
        server.wait()
    manifest = {m["docno"]: m for m in map(json.loads, open(site / "manifest.jsonl", encoding="utf-8"))}
    rows = duckdb.connect().execute(
        "SELECT url, article_id, duplicate_of FROM read_parquet(?, hive_partitioning=true)",
        [str(out / "articles" / "**" / "*.parquet")]).fetchall()
    by_url = {u: (aid, dup) for u, aid, dup in rows}
    by_hash = {}
    for docno, m in manifest.items():
        by_hash.setdefault(content_hash(m["body"]), []).append(docno)

    def cluster(docno):
        m = manifest.get(docno)
        if m is None:
            return None
        row = by_url.get(canonical_url(m["url"]))
        if row is None:  # dropped as an exact copy: the cluster of the copy that was written
            for other in by_hash[content_hash(m["body"])]:
                r = by_url.get(canonical_url(manifest[other]["url"]))
                if r is not None:
                    return r[1] or r[0]
            return None
        return row[1] or row[0]

    counts = defaultdict(lambda: [0, 0])
    tp = fp = fn = 0
    for p in pairs:
        ca, cb = cluster(p["a"]), cluster(p["b"])
        flagged = ca is not None and ca == cb
        counts[p["label"]][0] += flagged
        counts[p["label"]][1] += 1
        if p["label"] == "dup":
            tp += flagged
            fn += not flagged
        else:
            fp += flagged
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    report = {
        "articles_served": len(manifest), "pair_articles": len(pair_ids), "context_days": args.context_days,
        "rows": len(rows), "exit_code": result["exit_code"], "wall_s": result["wall_s"],
        "precision": round(precision, 3), "recall": round(recall, 3),
        "f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        "flagged_by_label": {k: f"{v[0]}/{v[1]}" for k, v in sorted(counts.items())},
    }
    print(json.dumps(report, indent=2))
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
