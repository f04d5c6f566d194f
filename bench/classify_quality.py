#!/usr/bin/env python3
"""Quality and speed of the NATO/Ukraine classifier on the labelled dev set.

    python bench/classify_quality.py --eval-dir ../shared/eval [--lexicon PATH] [--show 5]

Reads ``topics/dev.tsv`` (docno, source, section, nato, ukraine, unsure, kind), joins it to
``articles/ant_multisource_v2.1.jsonl.gz`` by docno (title + text, paragraphs split by newlines),
and adds the five files in ``seeds/`` as positives for both topics (they have no separate title:
the whole file is the body, boilerplate included). Prints precision / recall / F1 per topic, on
all rows and on the rows not marked ``unsure``, a few false positives / negatives with their
evidence, and the classification time per article.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import time
from pathlib import Path

from akhbar.transforms.classify import TOPICS, classify, load_lexicon


def load_dev(eval_dir: Path) -> list[dict]:
    labels: dict[str, dict] = {}
    with open(eval_dir / "topics" / "dev.tsv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            labels[row["docno"]] = row
    rows: list[dict] = []
    with gzip.open(eval_dir / "articles" / "ant_multisource_v2.1.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            lab = labels.get(rec.get("docno"))
            if lab is None:
                continue
            rows.append(
                {
                    "id": rec["docno"],
                    "title": rec.get("title") or "",
                    "body": rec.get("text") or "",
                    "nato": lab["nato"] == "1",
                    "ukraine": lab["ukraine"] == "1",
                    "unsure": lab.get("unsure") == "1",
                    "kind": lab.get("kind", ""),
                }
            )
    missing = len(labels) - len(rows)
    if missing:
        print(f"warning: {missing} labelled docnos not found in the articles file", file=sys.stderr)
    for path in sorted((eval_dir / "seeds").glob("*.txt")):
        rows.append(
            {
                "id": f"seed:{path.name}",
                "title": "",
                "body": path.read_text(encoding="utf-8"),
                "nato": True,
                "ukraine": True,
                "unsure": False,
                "kind": "seed",
            }
        )
    return rows


def prf(pairs: list[tuple[bool, bool]]) -> tuple[float, float, float, int, int, int]:
    tp = sum(1 for gold, pred in pairs if gold and pred)
    fp = sum(1 for gold, pred in pairs if not gold and pred)
    fn = sum(1 for gold, pred in pairs if gold and not pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, tp, fp, fn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval-dir", default=os.path.join("..", "shared", "eval"), type=Path)
    ap.add_argument("--lexicon", default=None, help="lexicon YAML (default: the packaged one)")
    ap.add_argument("--show", type=int, default=5, help="errors to list per topic and kind")
    args = ap.parse_args(argv)

    lexicon = load_lexicon(args.lexicon)
    rows = load_dev(args.eval_dir)

    results = []
    t0 = time.perf_counter()
    for row in rows:
        results.append(classify(row["title"], row["body"], lexicon))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()  # second pass: token caches warm, as in a long-running worker
    for row in rows:
        classify(row["title"], row["body"], lexicon)
    elapsed = time.perf_counter() - t0
    total_chars = sum(len(r["title"]) + len(r["body"]) for r in rows)
    total_bytes = sum(len((r["title"] + r["body"]).encode("utf-8")) for r in rows)

    n_pos = {t: sum(r[t] for r in rows) for t in TOPICS}
    print(f"lexicon: {lexicon.source}")
    print(f"rows: {len(rows)} (nato positives {n_pos['nato']}, ukraine positives {n_pos['ukraine']})")
    print(
        f"time: {elapsed * 1000 / len(rows):.3f} ms/article warm ({cold * 1000 / len(rows):.3f} cold); "
        f"articles average {total_chars / len(rows):.0f} chars; "
        f"{elapsed * 1e6 / total_bytes * 5000:.0f} us per 5 KB of UTF-8 text"
    )
    print()
    print(f"{'topic':8} {'subset':10} {'P':>6} {'R':>6} {'F1':>6}   tp  fp  fn")
    for topic in TOPICS:
        for subset, keep in (("all", lambda r: True), ("sure-only", lambda r: not r["unsure"])):
            pairs = [
                (row[topic], topic in res.topics) for row, res in zip(rows, results) if keep(row)
            ]
            p, r, f, tp, fp, fn = prf(pairs)
            print(f"{topic:8} {subset:10} {p:6.3f} {r:6.3f} {f:6.3f} {tp:4d}{fp:4d}{fn:4d}")
    for topic in TOPICS:
        score_attr = f"{topic}_score"
        for label, want_gold in (("false positives", False), ("false negatives", True)):
            errs = [
                (row, res)
                for row, res in zip(rows, results)
                if row[topic] == want_gold and (topic in res.topics) != want_gold
            ]
            errs.sort(key=lambda x: getattr(x[1], score_attr), reverse=not want_gold)
            print(f"\n{topic} {label} ({len(errs)}):")
            for row, res in errs[: args.show]:
                flag = " [unsure]" if row["unsure"] else ""
                print(
                    f"  {getattr(res, score_attr):.2f} {row['id']}{flag} | {row['title'][:70]}"
                    f" | evidence {res.evidence[topic][:4]}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
