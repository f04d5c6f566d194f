#!/usr/bin/env python3
"""Near-duplicate quality on the labelled pairs of the shared evaluation data.

    python bench/dedup_quality.py --eval-dir ../shared/eval [--num-perm 128 --bands 32 --jaccard 0.5 --containment 0.7]

For each pair in ``pairs/dev.tsv`` (a, b, label ∈ dup / same_story / different) it asks akhbar's
near-duplicate index whether b matches a, and reports precision / recall / F1 of ``dup`` against
the rest, with and without the pairs marked unsure.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

from akhbar.transforms.dedup import MinHasher, NearDupConfig, NearDupIndex, content_hash


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--num-perm", type=int, default=NearDupConfig.num_perm)
    ap.add_argument("--bands", type=int, default=NearDupConfig.bands)
    ap.add_argument("--shingle", type=int, default=NearDupConfig.shingle)
    ap.add_argument("--jaccard", type=float, default=NearDupConfig.jaccard)
    ap.add_argument("--containment", type=float, default=NearDupConfig.containment)
    args = ap.parse_args(argv)
    ev = Path(args.eval_dir)
    pairs = list(csv.DictReader(open(ev / "pairs" / "dev.tsv", encoding="utf-8"), delimiter="\t"))
    need = {p[k] for p in pairs for k in ("a", "b")}
    texts = {}
    with gzip.open(ev / "articles" / "ant_multisource_v2.1.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["docno"] in need:
                texts[d["docno"]] = "\n".join(p.strip() for p in d["text"].split("\n") if p.strip())
    cfg = NearDupConfig(num_perm=args.num_perm, bands=args.bands, shingle=args.shingle, jaccard=args.jaccard,
                        containment=args.containment)
    hasher = MinHasher(cfg)
    results = []
    for p in pairs:
        if p["a"] not in texts or p["b"] not in texts:
            continue
        idx = NearDupIndex(cfg)
        idx.add(p["a"], *hasher.signature(texts[p["a"]]))
        exact = content_hash(texts[p["a"]]) == content_hash(texts[p["b"]])
        predicted = exact or idx.query(*hasher.signature(texts[p["b"]])) == p["a"]
        results.append((p["label"], p.get("unsure") == "1", predicted))
    print(f"config: {cfg}")
    print(f"{'subset':<10}{'pairs':>7}{'P':>8}{'R':>8}{'F1':>8}{'tp':>5}{'fp':>5}{'fn':>5}")
    for name, rows in (("all", results), ("sure-only", [r for r in results if not r[1]])):
        tp = sum(1 for lab, _, pr in rows if lab == "dup" and pr)
        fp = sum(1 for lab, _, pr in rows if lab != "dup" and pr)
        fn = sum(1 for lab, _, pr in rows if lab == "dup" and not pr)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        print(f"{name:<10}{len(rows):>7}{p:>8.3f}{r:>8.3f}{f1:>8.3f}{tp:>5}{fp:>5}{fn:>5}")
    by_label = {}
    for lab, _, pr in results:
        by_label.setdefault(lab, [0, 0])[0] += pr
        by_label[lab][1] += 1
    print("flagged as near-duplicate, by label: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(by_label.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
