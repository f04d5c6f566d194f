#!/usr/bin/env python3
"""Near-duplicate quality on the labelled pairs of the shared evaluation data.

    python bench/dedup_quality.py --eval-dir ../shared/eval [--containment 0.42 --boiler-docs 5]

For each pair in ``pairs/dev.tsv`` (a, b, label ∈ dup / same_story / different) it asks whether b
is a near-duplicate of a, and reports precision / recall / F1 of ``dup`` against the rest and how
many ``same_story`` and ``different`` pairs were flagged, for akhbar's method and for the
alternatives that were measured while choosing it (``--methods all``):

- ``akhbar``: MinHash LSH candidates (128 values, 64 bands x 2 rows) verified by the containment
  of the shorter article's word 3-shingles once per-source boilerplate is removed, publication
  gap <= 30 days. Boilerplate = shingles in >= 5 other articles of the same source over the 30
  days before the later article of the pair (the stored window) in the ANT corpus, which holds
  every article those outlets published in their feeds: what a deployment would have seen.
- ``akhbar-pairs-only``: the same, boilerplate counted over the 343 pair articles only (what an
  end-to-end run fed with nothing but the pair pages sees).
- ``v1``: the previous method (estimated Jaccard >= 0.5 or estimated containment >= 0.7).
- ``datatrove``: datatrove's default MinHash settings emulated (datatrove is not installed
  here): word 5-grams of lower-cased text with punctuation removed, combining marks stripped and
  digits folded to 0, 112 hashes in 14 bands x 8 rows; a pair is a duplicate when any band
  collides (datatrove has no verification step).
- threshold-only methods (word 2/3/5-grams, clitic-folded words, character 5/7-grams, sentence
  containment): the threshold is chosen by 5-fold cross-validation (best F1 on four folds, scored
  on the fifth), so their figures are not tuned on the pairs they are scored on.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np

from akhbar.transforms.arabic import tokens
from akhbar.transforms.dedup import (
    MinHasher,
    NearDupConfig,
    NearDupIndex,
    content_hash,
    shingle_hashes,
)

SPLIT = re.compile(r"(?<=[.!?؟])\s+|\n+")


def load(ev: Path, need_all: bool):
    pairs = list(csv.DictReader(open(ev / "pairs" / "dev.tsv", encoding="utf-8"), delimiter="\t"))
    need = {p[k] for p in pairs for k in ("a", "b")}
    docs = {}
    with gzip.open(ev / "articles" / "ant_multisource_v2.1.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if need_all or d["docno"] in need:
                try:
                    when = parsedate_to_datetime(d["time"])
                except (TypeError, ValueError):
                    when = None
                docs[d["docno"]] = (d["src"], when,
                                    "\n".join(p.strip() for p in d["text"].split("\n") if p.strip()))
    return [p for p in pairs if p["a"] in docs and p["b"] in docs], docs


def scores(rows):
    """rows: (label, unsure, predicted) → dict of figures."""
    tp = sum(1 for lab, _, pr in rows if lab == "dup" and pr)
    fp = sum(1 for lab, _, pr in rows if lab != "dup" and pr)
    fn = sum(1 for lab, _, pr in rows if lab == "dup" and not pr)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    lab = Counter(lab for lab, _, _ in rows)
    flag = Counter(lab for lab, _, pr in rows if pr)
    return {"P": p, "R": r, "F1": f1, "tp": tp, "fp": fp, "fn": fn,
            "same_story": f"{flag['same_story']}/{lab['same_story']}",
            "different": f"{flag['different']}/{lab['different']}"}


# -- boilerplate over the corpus: per source and day, how many articles hold each shingle ------

class DayCounts:
    def __init__(self, docs, k):
        self.by_day: dict[tuple[str, int], Counter] = defaultdict(Counter)
        for src, when, text in docs.values():
            if when is not None:
                self.by_day[(src, when.date().toordinal())].update(shingle_hashes(text, k).tolist())

    def boilerplate(self, src, day, hashes, window_days, min_other):
        c = Counter()
        keys = hashes.tolist()
        for d in range(day - window_days, day + 1):
            cnt = self.by_day.get((src, d))
            if cnt:
                for h in keys:
                    c[h] += cnt.get(h, 0)
        return np.array(sorted(h for h in keys if c[h] > min_other), dtype=np.uint32)


def run_akhbar(pairs, docs, cfg, counts: DayCounts | None, window_days=30):
    """akhbar's method pair by pair: LSH candidate, then verification with boilerplate removed."""
    hasher = MinHasher(cfg)
    cache = {}

    def fp(k):
        if k not in cache:
            h = shingle_hashes(docs[k][2], cfg.shingle)
            cache[k] = (hasher.signature_of(h), h)
        return cache[k]

    if counts is None:  # pairs only: every pair article once
        pair_docs = {k: docs[k] for p in pairs for k in (p["a"], p["b"])}
        counts = DayCounts(pair_docs, cfg.shingle)
    out = []
    for p in pairs:
        (sa, ha), (sb, hb) = fp(p["a"]), fp(p["b"])
        (src_a, wa, ta), (src_b, wb, tb) = docs[p["a"]], docs[p["b"]]
        day = max(wa, wb).date().toordinal()  # the later article: batch + stored window behind it
        boiler = {}
        for src, h in ((src_a, ha), (src_b, hb)):
            boiler.setdefault(src, set()).update(
                counts.boilerplate(src, day, h, window_days, cfg.boiler_docs).tolist())
        idx = NearDupIndex(cfg, {s: np.array(sorted(v), dtype=np.uint32) for s, v in boiler.items()})
        idx.add(p["a"], sa, len(ha), shingles=ha, source_id=src_a, when=wa)
        exact = content_hash(ta) == content_hash(tb)
        pred = exact or idx.query(sb, len(hb), shingles=hb, source_id=src_b, when=wb) == p["a"]
        out.append((p["label"], p.get("unsure") == "1", pred))
    return out


def run_v1(pairs, docs):
    cfg = NearDupConfig()
    h = MinHasher(cfg)
    out = []
    for p in pairs:
        idx = NearDupIndex(cfg)
        idx.add(p["a"], *h.signature(docs[p["a"]][2]))  # no shingles: the MinHash-only rule
        pred = (content_hash(docs[p["a"]][2]) == content_hash(docs[p["b"]][2])
                or idx.query(*h.signature(docs[p["b"]][2])) == p["a"])
        out.append((p["label"], p.get("unsure") == "1", pred))
    return out


# -- datatrove's defaults, emulated ----------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]|_")


def datatrove_text(text: str) -> list[str]:
    s = unicodedata.normalize("NFD", text.lower())
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = re.sub(r"\d+", "0", _PUNCT.sub(" ", s))
    return s.split()


def run_datatrove(pairs, docs, n=5, buckets=14, rows=8):
    rng = np.random.default_rng(1)
    num = buckets * rows
    a = rng.integers(1, (1 << 61) - 1, size=num, dtype=np.uint64)
    b = rng.integers(0, (1 << 61) - 1, size=num, dtype=np.uint64)

    def sig(text):
        w = datatrove_text(text)
        grams = {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}
        hv = np.array([int.from_bytes(hashlib.sha1(g.encode()).digest()[:4], "little") for g in grams],
                      dtype=np.uint64)
        return ((np.outer(hv, a) + b) % np.uint64((1 << 61) - 1)).min(axis=0).reshape(buckets, rows)

    out = []
    for p in pairs:
        sa, sb = sig(docs[p["a"]][2]), sig(docs[p["b"]][2])
        out.append((p["label"], p.get("unsure") == "1", bool((sa == sb).all(axis=1).any())))
    return out


# -- threshold-only similarity measures -------------------------------------------------------

def fold_clitics(t: str) -> str:
    for pre in ("وال", "بال", "فال", "كال", "لل", "ال"):
        if t.startswith(pre) and len(t) - len(pre) >= 2:
            return t[len(pre):]
    if t[0] in "وفبل" and len(t) >= 4:
        t = t[1:]
    return t[2:] if t.startswith("ال") and len(t) >= 4 else t


def word_set(text, k, fold=False):
    t = tokens(text)
    if fold:
        t = [fold_clitics(x) for x in t]
    return {" ".join(t[i:i + k]) for i in range(max(1, len(t) - k + 1))}


def char_set(text, k):
    s = " ".join(tokens(text))
    return {s[i:i + k] for i in range(max(1, len(s) - k + 1))}


def contained(a: set, b: set) -> float:
    a, b = (a, b) if len(a) <= len(b) else (b, a)
    return len(a & b) / len(a) if a else 0.0


def sentence_containment(ta, tb, k=3, tau=0.5):
    """Share of the shorter text's sentences (>= 4 words) whose word 3-grams are at least
    ``tau`` found in the other text: the label definition, made fuzzy for rewording."""
    def sents(t):
        return [s for s in (tokens(x) for x in SPLIT.split(t)) if len(s) >= 4]

    sa, sb = sents(ta), sents(tb)
    if sum(map(len, sa)) > sum(map(len, sb)):
        sa, sb = sb, sa
    other = {" ".join(s[i:i + k]) for s in sb for i in range(len(s) - k + 1)}
    hit = 0
    for s in sa:
        g = {" ".join(s[i:i + k]) for i in range(len(s) - k + 1)}
        hit += len(g & other) / len(g) >= tau
    return hit / len(sa) if sa else 0.0


MEASURES = {
    "word 2-grams": lambda a, b: contained(word_set(a, 2), word_set(b, 2)),
    "word 3-grams": lambda a, b: contained(word_set(a, 3), word_set(b, 3)),
    "word 5-grams": lambda a, b: contained(word_set(a, 5), word_set(b, 5)),
    "word 3-grams, clitics folded": lambda a, b: contained(word_set(a, 3, True), word_set(b, 3, True)),
    "char 5-grams": lambda a, b: contained(char_set(a, 5), char_set(b, 5)),
    "char 7-grams": lambda a, b: contained(char_set(a, 7), char_set(b, 7)),
    "sentences (label definition)": sentence_containment,
}


def best_threshold(vals):
    best = (-1.0, 1.0)
    for th in sorted({v for _, _, v in vals}):
        f1 = scores([(lab, u, v >= th) for lab, u, v in vals])["F1"]
        if f1 > best[0]:
            best = (f1, th)
    return best[1]


def cross_validated(vals, folds=5, seed=7):
    order = list(range(len(vals)))
    random.Random(seed).shuffle(order)
    out, ths = [None] * len(vals), []
    for f in range(folds):
        test = set(order[f::folds])
        th = best_threshold([v for i, v in enumerate(vals) if i not in test])
        ths.append(th)
        for i in test:
            lab, u, v = vals[i]
            out[i] = (lab, u, v >= th)
    return out, ths


def line(name, s, note=""):
    print(f"| {name} | {s['P']:.3f} | {s['R']:.3f} | {s['F1']:.3f} | {s['same_story']} | {s['different']} | {note} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--containment", type=float, default=NearDupConfig.containment)
    ap.add_argument("--boiler-docs", type=int, default=NearDupConfig.boiler_docs)
    ap.add_argument("--window-days", type=int, default=30)
    ap.add_argument("--methods", choices=("akhbar", "all"), default="akhbar")
    ap.add_argument("--sweep", action="store_true", help="also print akhbar's figures around the threshold")
    args = ap.parse_args(argv)
    pairs, docs = load(Path(args.eval_dir), need_all=True)
    cfg = NearDupConfig(containment=args.containment, boiler_docs=args.boiler_docs,
                        max_gap_days=float(args.window_days))
    counts = DayCounts(docs, cfg.shingle)
    print(f"{len(pairs)} pairs; config: {cfg}", file=sys.stderr)
    print("| method | P | R | F1 | same_story flagged | different flagged | note |")
    print("|---|---|---|---|---|---|---|")
    res = run_akhbar(pairs, docs, cfg, counts, args.window_days)
    line("akhbar", scores(res), f"containment >= {cfg.containment}")
    line("akhbar, sure pairs only", scores([r for r in res if not r[1]]))
    if args.methods == "all":
        line("akhbar-pairs-only", scores(run_akhbar(pairs, docs, cfg, None, args.window_days)),
             "boilerplate from the pair articles alone")
        nogap = NearDupConfig(containment=cfg.containment, boiler_docs=cfg.boiler_docs, max_gap_days=None)
        line("akhbar without the 30-day gap limit", scores(run_akhbar(pairs, docs, nogap, counts, 10**5)))
        line("v1 (previous)", scores(run_v1(pairs, docs)))
        line("datatrove defaults (emulated)", scores(run_datatrove(pairs, docs)), "5-grams, 14x8, any band")
        for name, fn in MEASURES.items():
            vals = [(p["label"], p.get("unsure") == "1", fn(docs[p["a"]][2], docs[p["b"]][2])) for p in pairs]
            cv, ths = cross_validated(vals)
            line(f"{name}, containment", scores(cv), "5-fold CV thresholds " + "/".join(f"{t:.2f}" for t in ths))
    if args.sweep:
        print("\n| containment | P | R | F1 | same_story flagged | different flagged |\n|---|---|---|---|---|---|")
        for th in (0.30, 0.34, 0.38, 0.40, 0.42, 0.44, 0.46, 0.50, 0.55):
            c = NearDupConfig(containment=th, boiler_docs=cfg.boiler_docs, max_gap_days=cfg.max_gap_days)
            s = scores(run_akhbar(pairs, docs, c, counts, args.window_days))
            print(f"| {th:.2f} | {s['P']:.3f} | {s['R']:.3f} | {s['F1']:.3f} | {s['same_story']} | {s['different']} |")
        print("\n| boiler_docs | P | R | F1 | same_story flagged | different flagged |\n|---|---|---|---|---|---|")
        for n in (2, 3, 5, 8, 10):
            c = NearDupConfig(containment=cfg.containment, boiler_docs=n, max_gap_days=cfg.max_gap_days)
            s = scores(run_akhbar(pairs, docs, c, counts, args.window_days))
            print(f"| {n} | {s['P']:.3f} | {s['R']:.3f} | {s['F1']:.3f} | {s['same_story']} | {s['different']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
