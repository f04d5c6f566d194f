#!/usr/bin/env python3
"""End-to-end acceptance run against a fixture site built from the shared evaluation data.

Builds a site with ``eval/tools/make_site.py`` (default: the 1,606 labelled articles of
``eval/topics/dev.tsv``), serves it on 127.0.0.1, runs ``akhbar run`` twice and reports:
wall time and peak memory of each run, coverage (every page written unless it is an exact
duplicate of another page), URLs written twice, rows added by the second run, body token
precision/recall/F1 per page layout against the site's truth, publication-date accuracy and, when
the ids file is a labels file (``nato`` and ``ukraine`` columns, as ``topics/dev.tsv``), the topic
classification end to end: precision/recall/F1 per topic of the ``topics`` column against the labels,
how many rows that mention no NATO/Ukraine term got a topic, and how many decisions differ from the
classifier run on the site's true title and body (what extraction changed), with those rows listed.

    python bench/e2e_eval.py --eval-dir ../shared/eval [--limit N | --ids FILE] [--workdir DIR]
        [-- extra akhbar run args, e.g. --direct_num_workers 2 --direct_running_mode multi_processing]

Only 127.0.0.1 is contacted. The site is our own, so the per-host politeness interval is 0.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import duckdb

from akhbar.transforms.arabic import tokens
from akhbar.transforms.classify import TOPICS, classify, load_lexicon
from akhbar.transforms.evaluate import NO_TERM_KINDS, read_labels
from akhbar.transforms.evaluate import prf as topic_prf
from akhbar.transforms.dedup import content_hash
from akhbar.transforms.urls import canonical_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"fixture site did not start on port {port}")


def run_akhbar(sources: Path, output: Path, extra: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "akhbar", "run", "--sources", str(sources), "--output", str(output),
                           "--allow-private-hosts", "--host-interval", "0", *extra], capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
    return {"exit_code": proc.returncode, "wall_s": round(wall, 2),
            "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
            "peak_rss_mb_max_child": round(after.ru_maxrss / 1024, 1), "stdout": proc.stdout}


def prf(ref: Counter, got: Counter) -> tuple[float, float, float]:
    overlap = sum((ref & got).values())
    p = overlap / max(1, sum(got.values()))
    r = overlap / max(1, sum(ref.values()))
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _option(args: list[str], name: str) -> str | None:
    """The value of ``name`` among the arguments passed on to ``akhbar run``, if given."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def topic_quality(manifest: list[dict], by_url: dict, labels: dict[str, dict], run_args: list[str] = ()) -> dict:
    """The written ``topics`` against the labels, per topic; a page not written because it is an
    exact duplicate of another is judged by the copy that was written (what a reader gets). The
    comparison with the true text uses the run's ``--lexicon``; with ``--classifier`` (a model
    decided) it is not made."""
    compare = _option(list(run_args), "--classifier") is None
    lexicon = load_lexicon(_option(list(run_args), "--lexicon"))
    twins = defaultdict(list)  # the site's true body → the pages that carry it
    for m in manifest:
        twins[content_hash(m["body"])].append(canonical_url(m["url"]))
    pairs = {t: [] for t in TOPICS}
    no_term = given = unscored = 0
    changed, errors = [], {t: [] for t in TOPICS}
    for m in manifest:
        lab = labels.get(m["docno"])
        if lab is None:
            continue
        got = by_url.get(canonical_url(m["url"])) or next(
            (by_url[u] for u in twins[content_hash(m["body"])] if u in by_url), None)
        if not got:
            unscored += 1
            continue
        topics = set(got[0][4] or ())
        offline = set(classify(m["title"], m["body"], lexicon).topics) if compare else topics
        if topics != offline:
            changed.append({"docno": m["docno"], "end_to_end": sorted(topics), "on_true_text": sorted(offline)})
        if lab.get("kind") in NO_TERM_KINDS:
            no_term += 1
            given += bool(topics)
        unsure = lab.get("unsure") == "1"
        for t in TOPICS:
            gold = lab[t] == "1"
            pairs[t].append((gold, t in topics, unsure))
            if gold != (t in topics):
                flag = " [unsure]" if unsure else ""
                errors[t].append(f"{'FN' if gold else 'FP'} {m['docno']}{flag} | {m['title'][:60]}")
    out = {"labelled_pages_scored": len(pairs[TOPICS[0]]), "labelled_pages_not_written": unscored}
    for t in TOPICS:
        for subset, rows in (("all", pairs[t]), ("sure_only", [x for x in pairs[t] if not x[2]])):
            c = topic_prf([g for g, _, _ in rows], [p for _, p, _ in rows])
            out[f"{t}_{subset}"] = {"p": round(c.precision, 3), "r": round(c.recall, 3), "f1": round(c.f1, 3),
                                    "tp": c.tp, "fp": c.fp, "fn": c.fn}
        out[f"{t}_errors"] = errors[t]
    out["no_term_pages_given_a_topic"] = f"{given} of {no_term}"
    out["decisions_differing_from_true_text"] = changed if compare else "not compared: a model decided"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True, help="path to shared/eval")
    ap.add_argument("--ids", help="ids or labels file for make_site (default: topics/dev.tsv)")
    ap.add_argument("--articles", help="articles file (default: articles/ant_multisource_v2.1.jsonl.gz)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--workdir", help="keep the site and output here (default: a temporary folder)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args, extra = ap.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    ev = Path(args.eval_dir)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="akhbar-e2e-"))
    site, out = work / "site", work / "out"
    port = free_port()
    build = [sys.executable, str(ev / "tools" / "make_site.py"), "build",
             "--articles", args.articles or str(ev / "articles" / "ant_multisource_v2.1.jsonl.gz"),
             "--out", str(site), "--base-url", f"http://127.0.0.1:{port}"]
    if args.limit:
        build += ["--limit", str(args.limit)]
    if args.ids or not args.limit:
        build += ["--ids", args.ids or str(ev / "topics" / "dev.tsv")]
    subprocess.run(build, check=True)
    server = subprocess.Popen([sys.executable, str(ev / "tools" / "make_site.py"), "serve", "--dir", str(site),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        first = run_akhbar(site / "sources.yaml", out, extra)
        second = run_akhbar(site / "sources.yaml", out, extra)
    finally:
        server.terminate()
        server.wait()

    manifest = [json.loads(line) for line in open(site / "manifest.jsonl", encoding="utf-8")]
    con = duckdb.connect()
    rows = con.execute(
        "SELECT url, body, published_at, run_id, topics FROM read_parquet(?, hive_partitioning=true)",
        [str(out / "articles" / "**" / "*.parquet")]).fetchall()
    by_url = defaultdict(list)
    for r in rows:
        by_url[r[0]].append(r)
    runs = sorted({r[3] for r in rows})
    hashes = Counter(content_hash(m["body"]) for m in manifest)
    expected_pages = [m for m in manifest if hashes[content_hash(m["body"])] == 1]
    dup_groups = {h for h, n in hashes.items() if n > 1}
    covered = sum(1 for m in expected_pages if canonical_url(m["url"]) in by_url)
    # one copy of each exact-duplicate group must be there as well
    groups_covered = sum(1 for h in dup_groups
                         if any(canonical_url(m["url"]) in by_url for m in manifest if content_hash(m["body"]) == h))
    per_layout = defaultdict(lambda: [Counter(), Counter(), 0])
    date_total = date_exact = date_day = 0
    missing = []
    for m in manifest:
        got = by_url.get(canonical_url(m["url"]))
        if not got:
            if hashes[content_hash(m["body"])] == 1:
                missing.append(m["url"])
            continue
        ref_t, got_t = Counter(tokens(m["body"])), Counter(tokens(got[0][1]))
        acc = per_layout[m["layout"]]
        p, r, f = prf(ref_t, got_t)
        acc[0]["p"] += p
        acc[0]["r"] += r
        acc[0]["f"] += f
        acc[2] += 1
        if m.get("published"):
            date_total += 1
            pub = got[0][2]
            if pub is not None:
                from datetime import datetime
                truth = datetime.fromisoformat(m["published"])
                date_day += pub.date() == truth.date()
                date_exact += abs((pub - truth).total_seconds()) < 60
    result = {
        "pages": len(manifest),
        "unique_pages": len(expected_pages),
        "exact_duplicate_groups": len(dup_groups),
        "coverage": round((covered + groups_covered) / max(1, len(expected_pages) + len(dup_groups)), 4),
        "missing": missing,
        "rows": len(rows),
        "urls_written_twice": sum(1 for v in by_url.values() if len(v) > 1),
        "runs_with_rows": len(runs),
        "second_run_rows": sum(1 for r in rows if len(runs) > 1 and r[3] == runs[-1]) if len(runs) > 1 else 0,
        "first_run": {k: v for k, v in first.items() if k != "stdout"},
        "second_run": {k: v for k, v in second.items() if k != "stdout"},
        "articles_per_s_first_run": round(len(rows) / max(first["wall_s"], 1e-9), 1),
        "body_token_prf_by_layout": {k: {m: round(v[0][m] / v[2], 4) for m in "prf"} | {"pages": v[2]}
                                     for k, v in sorted(per_layout.items())},
        "date_accuracy_day": round(date_day / max(1, date_total), 4),
        "date_accuracy_minute": round(date_exact / max(1, date_total), 4),
    }
    labels = (read_labels(Path(args.ids or ev / "topics" / "dev.tsv")) if args.ids or not args.limit else None) or {}
    if labels:
        result["topics_end_to_end"] = topic_quality(manifest, by_url, labels, extra)
    print(first["stdout"])
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0 if first["exit_code"] == 0 and second["exit_code"] == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("NO_GCE_CHECK", "true")
    sys.exit(main())
