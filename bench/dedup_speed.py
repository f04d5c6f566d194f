#!/usr/bin/env python3
"""Near-duplicate speed and size: signatures per second, index size and lookup time.

    python bench/dedup_speed.py --eval-dir ../shared/eval [--n 100000]

Articles are the ANT corpus bodies (31,525); beyond that the corpus is reused with a
per-copy marker word in every sentence, so that copies are distinct documents of the same length
and vocabulary (synthetic, stated in the output). Measures, on one core:

- fingerprints per second (word 3-shingle hashes + the 128-value MinHash signature);
- building the LSH index of ``--n`` articles (boilerplate counting included) and its size:
  signatures + shingle hashes as stored in the persisted index table, and the Python buckets;
- lookups per second against the full index (candidates + verification), for articles not in it;
- the same index loaded at once from stored entries (``index_from_entries``, what a run does with
  its stored window): time, memory, lookups.
"""
from __future__ import annotations

import argparse
import gc
import gzip
import json
import resource
import time
from pathlib import Path

from akhbar.transforms.dedup import (DocFrequency, IndexEntry, MinHasher, NearDupConfig, NearDupIndex,
                                     index_from_entries, shingle_hashes)


def bodies(ev: Path, n: int) -> list[tuple[str, str]]:
    base = []
    with gzip.open(ev / "articles" / "ant_multisource_v2.1.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            base.append((d["src"], d["text"]))
    out = list(base[:n])
    copy = 1
    while len(out) < n:
        tag = f"نسخه{copy}"
        for src, text in base:
            if len(out) >= n:
                break
            out.append((src, text.replace(".", f" {tag}.").replace("\n", f" {tag}\n")))
        copy += 1
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=2_000)
    args = ap.parse_args(argv)
    cfg = NearDupConfig()
    docs = bodies(Path(args.eval_dir), args.n + args.queries)
    hasher = MinHasher(cfg)

    t = time.perf_counter()
    fps = []
    for src, text in docs:
        h = shingle_hashes(text, cfg.shingle)
        fps.append((src, hasher.signature_of(h), h))
    dt = time.perf_counter() - t
    print(f"fingerprints: {len(docs)} in {dt:.1f} s = {len(docs) / dt:.0f} articles/s "
          f"(synthetic copies beyond 31,525: {max(0, len(docs) - 31525)})")

    stored, queries = fps[:args.n], fps[args.n:]
    t = time.perf_counter()
    df = DocFrequency()
    for src, _, h in stored:
        df.add(src, h)
    boiler = df.boilerplate(cfg.boiler_docs)
    t_df = time.perf_counter() - t
    idx = NearDupIndex(cfg, boiler)
    t = time.perf_counter()
    for i, (src, sig, h) in enumerate(stored):
        idx.add(str(i), sig, len(h), shingles=h, source_id=src)
    t_add = time.perf_counter() - t
    sig_bytes = sum(len(s) for _, s, _ in stored)
    sh_bytes = sum(4 * len(h) for _, _, h in stored)
    print(f"boilerplate count over {args.n}: {t_df:.1f} s ({sum(len(v) for v in boiler.values())} boilerplate shingles)")
    print(f"index build: {t_add:.1f} s; persisted entry data {sig_bytes / 2**20:.0f} MiB signatures + "
          f"{sh_bytes / 2**20:.0f} MiB shingle hashes (mean {sh_bytes / 4 / len(stored):.0f} per article); "
          f"{len(idx._buckets)} LSH buckets; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    t = time.perf_counter()
    n_cand = hits = 0
    for src, sig, h in queries:
        n_cand += len(idx.candidates(sig))
        hits += idx.query(sig, len(h), shingles=h, source_id=src) is not None
    dt = time.perf_counter() - t
    print(f"lookups against {args.n}: {len(queries)} in {dt:.2f} s = {1000 * dt / len(queries):.2f} ms each, "
          f"{n_cand / len(queries):.1f} candidates each, {hits} matched")

    # what every run does with its stored window: the entries loaded at once (one sorted array of
    # band keys), then the new articles looked up in it
    entries = [(IndexEntry(str(i), str(i), sig, len(h), h, src), None) for i, (src, sig, h) in enumerate(stored)]
    del idx
    gc.collect()
    before = _rss_mb()
    t = time.perf_counter()
    loaded = index_from_entries(entries, cfg)
    loaded.set_boilerplate(boiler)
    t_load = time.perf_counter() - t
    grown = _rss_mb() - before
    t = time.perf_counter()
    same = sum((loaded.query(sig, len(h), shingles=h, source_id=src) is not None) for src, sig, h in queries)
    dt = time.perf_counter() - t
    print(f"stored window of {args.n} loaded at once (index_from_entries, as a run does): {t_load:.1f} s, "
          f"RSS +{grown:.0f} MB; lookups {1000 * dt / len(queries):.2f} ms each, {same} matched")
    return 0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


if __name__ == "__main__":
    raise SystemExit(main())
