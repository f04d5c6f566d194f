"""What is already stored: the dedup state, derived from the committed articles themselves.

The seen index is read from the committed Parquet files under ``articles/`` and nothing else,
so it can never claim an article that is not in a committed file: a run killed at any point
and re-run neither loses nor duplicates rows.

Near-duplicate matching only looks back ``window_days`` (by ``fetched_at``); exact matching by
URL and content hash covers all history.

A compaction may swap a partition's files while the state is read (see
:mod:`akhbar.transforms.compact`); a read that straddled the swap could miss ids and make the run
fetch and write those articles again. So the read is repeated until no file it read (name,
inode, size, time) was replaced or removed while it was reading.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pyarrow.compute as pc

from akhbar.transforms import store
from akhbar.transforms.dedup import MinHasher, NearDupConfig, NearDupIndex


@dataclass(frozen=True)
class PriorState:
    article_ids: frozenset[str] = frozenset()
    content_hashes: frozenset[str] = frozenset()
    # (order key, article_id, root, signature, size) of recent articles, first-seen order
    recent: tuple[tuple[object, str, str, bytes, int], ...] = field(default=())

    def index(self, config: NearDupConfig) -> NearDupIndex:
        idx = NearDupIndex(config)
        for _, aid, root, sig, size in self.recent:
            idx.add(aid, sig, size, root=root)
        return idx


CONSISTENT_READ_ATTEMPTS = 5


def load_prior(output: str, *, now: datetime | None = None, window_days: int = 30,
               config: NearDupConfig | None = None) -> PriorState:
    """Read the dedup state of ``output`` (a local folder or ``gs://`` prefix)."""
    root = store.join(output, "articles")
    for attempt in range(CONSISTENT_READ_ATTEMPTS):
        before = store.snapshot(root)
        try:
            state = _read_prior(root, list(before), now=now, window_days=window_days, config=config)
        except FileNotFoundError:  # removed after it was listed (an old compaction placeholder)
            if attempt + 1 == CONSISTENT_READ_ATTEMPTS:
                raise
            continue
        after = store.snapshot(root)
        if all(after.get(path) == ident for path, ident in before.items()):
            break  # nothing read was replaced or removed meanwhile (files added since are new)
    return state


def _read_prior(root: str, paths: list[str], *, now: datetime | None, window_days: int,
                config: NearDupConfig | None) -> PriorState:
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=window_days)
    hasher = MinHasher(config)
    ids: set[str] = set()
    hashes: set[str] = set()
    recent = []
    for path in sorted(paths):
        with store.open_parquet(path) as f:  # one open: both reads see the same file
            t = f.read(["article_id", "content_hash", "fetched_at", "duplicate_of"])
            ids.update(t.column("article_id").to_pylist())
            hashes.update(t.column("content_hash").to_pylist())
            in_window = pc.greater_equal(t.column("fetched_at"), cutoff)
            if not pc.any(in_window).as_py():
                continue
            full = f.read(["article_id", "fetched_at", "duplicate_of", "body"]).filter(in_window)
        for aid, fetched, dup, body in zip(*(full.column(c).to_pylist() for c in
                                               ("article_id", "fetched_at", "duplicate_of", "body"))):
            sig, size = hasher.signature(body)
            recent.append(((fetched, aid), aid, dup or aid, sig, size))
    recent.sort(key=lambda r: r[0])
    return PriorState(frozenset(ids), frozenset(hashes), tuple(recent))
