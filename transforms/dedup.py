"""Exact and near-duplicate detection on normalized Arabic text.

- Exact: SHA-256 of the normalized body (:func:`content_hash`).
- Near (see ``docs/dedup.md`` for the method and the figures behind every parameter):

  1. every article is a set of word 3-shingles of its normalized text, hashed to 32 bits
     (:func:`shingle_hashes`);
  2. *candidates* come from a MinHash signature of that set (:class:`MinHasher`, 128 values)
     cut into 64 LSH bands of 2 rows (:class:`NearDupIndex`): cheap, scales to 100k+ articles;
  3. *boilerplate* is removed before verifying: a shingle that occurs in at least
     ``boiler_docs`` other articles of the same source (the batch plus the stored window) is a
     template line, a teaser of another story, a credit line — :class:`DocFrequency`;
  4. a candidate is *verified* when at least ``containment`` of the shorter article's remaining
     shingles occur in the other one, and both were published within ``max_gap_days``.

Everything here is deterministic across processes and runs: shingles are hashed with BLAKE2,
never Python's salted ``hash()``, and the permutations come from a fixed seed.
"""
from __future__ import annotations

import dataclasses

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import numpy as np

from akhbar.transforms.arabic import tokens

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)
_EMPTY = np.zeros(0, dtype=np.uint32)


def content_hash(body: str, toks: list[str] | None = None) -> str:
    """SHA-256 (hex) of the normalized body: equal for texts that differ only in folds.
    ``toks``: ``tokens(body)`` if the caller has them already."""
    return hashlib.sha256(" ".join(tokens(body) if toks is None else toks).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NearDupConfig:
    num_perm: int = 128
    shingle: int = 3  # words per shingle
    bands: int = 64  # LSH bands of num_perm // bands rows (2): 128 of 130 labelled dups are candidates
    containment: float = 0.42  # share of the shorter text's non-boilerplate shingles found in the other
    boiler_docs: int = 5  # a shingle in >= this many OTHER articles of the same source is boilerplate
    max_gap_days: float | None = 30.0  # publication times further apart are never near-duplicates
    # used only for index entries without shingle hashes (a state written before they existed):
    # MinHash estimates, as before — estimated Jaccard >= jaccard or estimated containment >= legacy
    jaccard: float = 0.5
    legacy_containment: float = 0.7
    seed: int = 20240601

    def __post_init__(self):
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        if not 0 < self.containment <= 1:
            raise ValueError(f"containment must be in (0, 1], got {self.containment}")
        if self.boiler_docs < 1:
            raise ValueError(f"boiler_docs must be at least 1, got {self.boiler_docs}")


def shingles(text: str, k: int, toks: list[str] | None = None) -> set[bytes]:
    toks = tokens(text) if toks is None else toks
    if len(toks) < k:
        return {" ".join(toks).encode("utf-8")} if toks else set()
    return {" ".join(toks[i:i + k]).encode("utf-8") for i in range(len(toks) - k + 1)}


def shingle_hashes(text: str, k: int = 3, toks: list[str] | None = None) -> np.ndarray:
    """Sorted, unique 32-bit hashes (uint32) of the word ``k``-shingles of ``text`` (``toks``:
    ``tokens(text)`` if the caller has them already)."""
    sh = shingles(text, k, toks)
    if not sh:
        return _EMPTY
    # each 4-byte digest read as a little-endian uint32, all at once
    digests = b"".join([hashlib.blake2b(s, digest_size=4).digest() for s in sh])
    return np.unique(np.frombuffer(digests, dtype="<u4").astype(np.uint32))


class MinHasher:
    """Vectorised MinHash over 32-bit shingle hashes (universal hashing mod 2^61-1)."""

    def __init__(self, config: NearDupConfig | None = None):
        self.config = config or NearDupConfig()
        rng = np.random.default_rng(self.config.seed)
        self._a = rng.integers(1, 1 << 32, size=self.config.num_perm, dtype=np.uint64)
        self._b = rng.integers(0, 1 << 32, size=self.config.num_perm, dtype=np.uint64)

    def signature(self, text: str) -> tuple[bytes, int]:
        """``(signature, number of shingles)``. The signature is ``num_perm`` little-endian
        uint32 values as bytes (512 bytes by default: compact to ship between workers); the
        empty text has an all-max signature."""
        hv = shingle_hashes(text, self.config.shingle)
        return self.signature_of(hv), len(hv)

    def signature_of(self, hashes: np.ndarray) -> bytes:
        """The signature of a set of shingle hashes (as from :func:`shingle_hashes`)."""
        if len(hashes) == 0:
            return np.full(self.config.num_perm, 0xFFFFFFFF, dtype="<u4").tobytes()
        hv = hashes.astype(np.uint64)
        # (a*x + b) fits in uint64 because a, b, x < 2^32; then reduce mod the Mersenne prime.
        phv = (np.outer(hv, self._a) + self._b) % _MERSENNE & _MAX32
        return phv.min(axis=0).astype("<u4").tobytes()


def jaccard(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values."""
    return float(np.mean(np.frombuffer(sig_a, dtype="<u4") == np.frombuffer(sig_b, dtype="<u4")))


def containment(j: float, size_a: int, size_b: int) -> float:
    """Estimated share of the smaller shingle set contained in the other, from Jaccard."""
    if j <= 0 or min(size_a, size_b) == 0:
        return 0.0
    inter = j / (1 + j) * (size_a + size_b)
    return min(1.0, inter / min(size_a, size_b))


def exact_containment(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller of two sorted unique hash arrays that occurs in the other."""
    n = min(len(a), len(b))
    if n == 0:
        return 0.0
    return len(np.intersect1d(a, b, assume_unique=True)) / n


# ---------------------------------------------------------------------------------------------
# Boilerplate: document frequency of shingles per source
# ---------------------------------------------------------------------------------------------


@dataclass
class DocFrequency:
    """How many articles of each source contain each shingle hash.

    A mergeable accumulator, so the count is a combine in Beam (``add`` per article, ``merge``
    partial counts from workers, ``boilerplate`` at the end); see ``docs/dedup.md`` for the
    streaming variant. It keeps the articles' own hash arrays (4 bytes a shingle, shared with
    the caller's) and counts them with numpy when asked: a ``Counter`` of Python ints took about
    70 bytes a shingle, 700 MB for a run of 30,000 articles.
    """

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, source_id: str, hashes: np.ndarray) -> "DocFrequency":
        self.parts.setdefault(source_id or "", []).append(np.asarray(hashes, dtype=np.uint32))
        return self

    def merge(self, other: "DocFrequency") -> "DocFrequency":
        for src, arrays in other.parts.items():
            self.parts.setdefault(src, []).extend(arrays)
        return self

    def boilerplate(self, min_other_docs: int) -> dict[str, np.ndarray]:
        """Per source, the sorted hashes found in at least ``min_other_docs`` + 1 articles."""
        out = {}
        for src, arrays in self.parts.items():
            values, counts = np.unique(np.concatenate(arrays) if arrays else _EMPTY, return_counts=True)
            out[src] = values[counts > min_other_docs].astype(np.uint32)
        return out


def remove_boilerplate(hashes: np.ndarray, boiler: np.ndarray | None) -> np.ndarray:
    """``hashes`` without those in ``boiler``, which must be sorted (as :meth:`DocFrequency.boilerplate`
    gives it): a binary search for each of the article's few hundred hashes, where ``np.isin`` sorted
    the source's whole boilerplate (often 100,000 hashes and more) again for every article."""
    if boiler is None or len(boiler) == 0 or len(hashes) == 0:
        return hashes
    at = np.minimum(np.searchsorted(boiler, hashes), len(boiler) - 1)
    return hashes[boiler[at] != hashes]


# ---------------------------------------------------------------------------------------------
# Index
# ---------------------------------------------------------------------------------------------


class NearItem(NamedTuple):
    """An article as the near-duplicate pass sees it."""

    order: object  # sort key of "first seen"
    article_id: str
    signature: bytes
    size: int
    shingles: np.ndarray | None = None  # sorted unique uint32 (None: a legacy entry, MinHash only)
    source_id: str = ""
    when: datetime | None = None  # publication (else fetch) time, for max_gap_days


@dataclass
class IndexEntry:
    article_id: str
    root: str  # article_id of the first-seen copy of its cluster
    signature: bytes
    size: int
    shingles: np.ndarray | None = None
    source_id: str = ""
    when: datetime | None = None
    # shingles without the source's boilerplate: worked out by the index when the entry is first a
    # candidate (None until then, and for an entry without shingles)
    kept: np.ndarray | None = None

    def __eq__(self, other) -> bool:  # by value, numpy arrays element-wise; ``kept`` is derived
        if not isinstance(other, IndexEntry):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self)
                   if f.name != "kept")


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(a, b)
    return a == b


@dataclass
class NearDupIndex:
    """Banded LSH over MinHash signatures with a verification step; ``add`` in first-seen order."""

    config: NearDupConfig = field(default_factory=NearDupConfig)
    boilerplate: dict[str, np.ndarray] = field(default_factory=dict)
    # LSH bucket → entry index, or a list of them (ascending) once a bucket holds more than one:
    # most buckets hold one entry, and a plain int key with an int value is about a third of the
    # memory of a (band, bytes) tuple key with a one-item list (the bulk of a large run's index)
    _buckets: dict[int, int | list[int]] = field(default_factory=dict)
    _entries: list[IndexEntry] = field(default_factory=list)
    # the entries given to ``load`` (a stored window, tens of thousands): their band keys in one
    # sorted array (``_array_keys``), with the entry and the band's value of each key beside it;
    # about 1.3 KB an entry, where the buckets of ``add`` take about 5 KB, and built in one sort
    # instead of 64 dict insertions an entry
    _bulk_keys: np.ndarray | None = None
    _bulk_entries: np.ndarray | None = None
    _bulk_values: np.ndarray | None = None

    def __post_init__(self):
        self.set_boilerplate(self.boilerplate)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[IndexEntry]:
        return self._entries

    def set_boilerplate(self, boilerplate: dict[str, np.ndarray]) -> None:
        """Use these per-source boilerplate shingles from now on. Entries are filtered when they
        are first a candidate, not here: a run compares a few hundred new articles with a window of
        tens of thousands, of which a few thousand are ever candidates."""
        self.boilerplate = {src: np.sort(hashes) for src, hashes in boilerplate.items()}  # remove_boilerplate searches
        for e in self._entries:
            e.kept = None

    def _kept(self, shingles: np.ndarray | None, source_id: str) -> np.ndarray | None:
        return None if shingles is None else remove_boilerplate(shingles, self.boilerplate.get(source_id or ""))

    def _entry_kept(self, e: IndexEntry) -> np.ndarray | None:
        if e.kept is None and e.shingles is not None:
            e.kept = self._kept(e.shingles, e.source_id)
        return e.kept

    def _array_keys(self, signatures: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(n, num_perm)`` uint32 signatures (bands of one or two values) → ``(n, bands)`` uint64
        search keys, the band's number in their top bits, and, for bands of two values, the bands'
        own 64-bit values: a key keeps only their upper bits (beside the band's number), so a hit
        on a key is checked against the value."""
        cfg = self.config
        rows = cfg.num_perm // cfg.bands
        b = signatures.reshape(signatures.shape[0], cfg.bands, rows).astype(np.uint64)
        number = np.arange(cfg.bands, dtype=np.uint64)
        if rows == 1:
            return b[:, :, 0] | (number << np.uint64(32)), None
        value = b[:, :, 0] | (b[:, :, 1] << np.uint64(32))
        bits = max(1, (cfg.bands - 1).bit_length())
        return (value >> np.uint64(bits)) | (number << np.uint64(64 - bits)), value

    def load(self, entries: Iterable[IndexEntry]) -> None:
        """Fill an empty index with ``entries`` (copies, in first-seen order), as ``add`` one by one
        would; with bands of one or two values (the default), their band keys go into one sorted
        array at once."""
        if self._entries:
            raise ValueError("load() fills an empty index; add() adds to one")
        self._entries = [IndexEntry(e.article_id, e.root or e.article_id, e.signature, e.size, e.shingles,
                                    e.source_id or "", e.when) for e in entries]
        width = 4 * self.config.num_perm
        arrays = self.config.num_perm <= 2 * self.config.bands
        whole = [i for i, e in enumerate(self._entries) if e.size and len(e.signature) == width and arrays]
        for i, e in enumerate(self._entries):
            if e.size and not (arrays and len(e.signature) == width):  # into the dict, as add() does
                self._bucket(i, e.signature)
        if not whole:
            return
        signatures = np.frombuffer(b"".join(self._entries[i].signature for i in whole), dtype="<u4")
        keys, values = self._array_keys(signatures.reshape(len(whole), -1))
        keys = keys.T.ravel()  # band by band
        order = np.argsort(keys, kind="stable")  # within a key, the entries stay in first-seen order
        self._bulk_keys = keys[order]
        self._bulk_entries = np.tile(np.asarray(whole, dtype=np.int32), self.config.bands)[order]
        self._bulk_values = None if values is None else values.T.ravel()[order]

    def _bulk_hits(self, signature: bytes) -> dict[int, list[int]]:
        """Band number → the loaded entries sharing that band with ``signature`` (first-seen order)."""
        cfg = self.config
        if self._bulk_keys is None or len(signature) != 4 * cfg.num_perm:
            return {}
        keys, values = self._array_keys(np.frombuffer(signature, dtype="<u4").reshape(1, -1))
        keys = keys[0]
        lo = np.searchsorted(self._bulk_keys, keys, "left")
        hi = np.searchsorted(self._bulk_keys, keys, "right")
        bands = np.flatnonzero(hi > lo)
        if not len(bands):
            return {}
        counts = hi[bands] - lo[bands]
        # the positions of every hit, band after band: each band's run lo..hi-1 in turn
        starts = np.repeat(lo[bands] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        at = starts + np.arange(int(counts.sum()))
        band_of = np.repeat(bands, counts)
        owners = self._bulk_entries[at]
        if values is not None:
            same = self._bulk_values[at] == values[0][band_of]
            band_of, owners = band_of[same], owners[same]
        hits: dict[int, list[int]] = {}
        for band, owner in zip(band_of.tolist(), owners.tolist()):
            hits.setdefault(band, []).append(owner)
        return hits

    def _band_keys(self, signature: bytes) -> list[int]:
        """One int per band: the band's bytes (little-endian) with the band's number above them,
        so equal bytes in different bands are different keys."""
        width = 4 * self.config.num_perm // self.config.bands
        shift = 8 * width
        if width in (4, 8) and len(signature) == width * self.config.bands:  # read all bands at once
            values = np.frombuffer(signature, dtype=f"<u{width}").tolist()
            return [v | (i << shift) for i, v in enumerate(values)]
        return [int.from_bytes(signature[i * width:(i + 1) * width], "little") | (i << shift)
                for i in range(self.config.bands)]

    def candidates(self, signature: bytes) -> list[int]:
        """The entries sharing at least one band with ``signature``: band by band, each band's in
        first-seen order, each entry once."""
        seen: dict[int, None] = {}
        buckets = self._buckets
        bulk = self._bulk_hits(signature)
        for band, key in enumerate(self._band_keys(signature)):
            for idx in bulk.get(band, ()):
                seen.setdefault(idx)
            hit = buckets.get(key)
            if hit is None:
                continue
            if type(hit) is int:
                seen.setdefault(hit)
            else:
                for idx in hit:
                    seen.setdefault(idx)
        return list(seen)

    def score(self, e: IndexEntry, signature: bytes, size: int, kept: np.ndarray | None,
              when: datetime | None) -> float | None:
        """Similarity of a query to entry ``e`` if it is a verified near-duplicate, else None."""
        cfg = self.config
        if cfg.max_gap_days is not None and when is not None and e.when is not None:
            if abs((when - e.when).total_seconds()) > cfg.max_gap_days * 86400:
                return None
        entry_kept = self._entry_kept(e) if kept is not None else None
        if entry_kept is not None:
            c = exact_containment(kept, entry_kept)
            return c if c >= cfg.containment else None
        j = jaccard(signature, e.signature)  # legacy entry: MinHash estimates only
        c = containment(j, size, e.size)
        return c if (j >= cfg.jaccard or c >= cfg.legacy_containment) else None

    def query(self, signature: bytes, size: int, *, shingles: np.ndarray | None = None,
              source_id: str = "", when: datetime | None = None) -> str | None:
        """The root id of the best verified near-duplicate already in the index, if any."""
        if size == 0:
            return None
        candidates = self.candidates(signature)
        if not candidates:
            return None
        kept = self._kept(shingles, source_id)
        best: tuple[float, int] | None = None
        for idx in candidates:
            s = self.score(self._entries[idx], signature, size, kept, when)
            if s is not None and (best is None or s > best[0]):
                best = (s, idx)
        return self._entries[best[1]].root if best else None

    def add(self, article_id: str, signature: bytes, size: int, root: str | None = None, *,
            shingles: np.ndarray | None = None, source_id: str = "", when: datetime | None = None) -> None:
        idx = len(self._entries)
        self._entries.append(IndexEntry(article_id, root or article_id, signature, size, shingles, source_id or "",
                                        when))
        if size:
            self._bucket(idx, signature)

    def _bucket(self, idx: int, signature: bytes) -> None:
        buckets = self._buckets
        for key in self._band_keys(signature):
            hit = buckets.get(key)
            if hit is None:
                buckets[key] = idx
            elif type(hit) is int:
                buckets[key] = [hit, idx]
            else:
                hit.append(idx)


def boilerplate_of(index: NearDupIndex, items: Iterable[NearItem]) -> dict[str, np.ndarray]:
    """Per-source boilerplate shingles over the stored entries of ``index`` and ``items``."""
    df = DocFrequency()
    for e in index.entries:
        if e.shingles is not None:
            df.add(e.source_id, e.shingles)
    for it in items:
        if it.shingles is not None:
            df.add(it.source_id, it.shingles)
    return df.boilerplate(index.config.boiler_docs)


def assign_near_duplicates(index: NearDupIndex, items: Iterable[tuple], *,
                           boilerplate: dict[str, np.ndarray] | None = None) -> dict[str, str]:
    """Walk ``items`` (:class:`NearItem` or ``(order, article_id, signature, size)``) in first-
    seen order.

    Returns ``{article_id: duplicate_of}`` for every item that is a near-duplicate of an
    earlier one (already in ``index`` or earlier in ``items``); ``duplicate_of`` is the first-
    seen copy of the cluster. Every item is added to ``index``. Boilerplate is counted over the
    index and the items unless given.
    """
    items = [it if isinstance(it, NearItem) else NearItem(*it) for it in items]
    index.set_boilerplate(boilerplate if boilerplate is not None else boilerplate_of(index, items))
    out: dict[str, str] = {}
    for it in sorted(items, key=lambda t: (t.order, t.article_id)):
        root = index.query(it.signature, it.size, shingles=it.shingles, source_id=it.source_id, when=it.when)
        if root is not None and root != it.article_id:
            out[it.article_id] = root
        index.add(it.article_id, it.signature, it.size, root=out.get(it.article_id), shingles=it.shingles,
                  source_id=it.source_id, when=it.when)
    return out


# ---------------------------------------------------------------------------------------------
# Persisted index entries (kept per articles file under _state/neardup/; docs/dedup.md)
# ---------------------------------------------------------------------------------------------

NEARDUP_STATE_VERSION = 1
# Bump when the shingle hashes or the MinHash signature of a given text change: normalization,
# tokenization, the shingle hash or the permutations. Index entries cached under _state/neardup/
# by another version are then computed again from the stored bodies, instead of being compared
# with fingerprints made another way (a test pins the fingerprints of one text).
FINGERPRINT_VERSION = 1


def fingerprint_key(config: NearDupConfig) -> str:
    """What the fingerprints of a text depend on: the version and the hashing settings (not the
    verification thresholds, which apply to fingerprints however they were cached)."""
    return f"{NEARDUP_STATE_VERSION}.{FINGERPRINT_VERSION}:{config.shingle}:{config.num_perm}:{config.seed}"


def neardup_schema():
    import pyarrow as pa

    return pa.schema([
        pa.field("article_id", pa.string(), nullable=False),
        pa.field("root", pa.string(), nullable=False),  # duplicate_of, or article_id itself
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("when", pa.timestamp("us", tz="UTC"), nullable=True),  # published_at or fetched_at
        pa.field("signature", pa.binary(), nullable=False),  # num_perm little-endian uint32
        pa.field("size", pa.int32(), nullable=False),
        pa.field("shingles", pa.binary(), nullable=True),  # sorted unique little-endian uint32
        pa.field("state_version", pa.int16(), nullable=False),
    ], metadata={b"akhbar.neardup.shingle": b"word-3", b"akhbar.neardup.hash": b"blake2b-32"})


def index_entries_to_arrow(rows: Iterable[tuple[IndexEntry, datetime]]):
    """``(entry, fetched_at)`` pairs → an Arrow table in :func:`neardup_schema`."""
    import pyarrow as pa

    rows = list(rows)
    cols = {
        "article_id": [e.article_id for e, _ in rows],
        "root": [e.root for e, _ in rows],
        "source_id": [e.source_id or "" for e, _ in rows],
        "fetched_at": [f for _, f in rows],
        "when": [e.when for e, _ in rows],
        "signature": [e.signature for e, _ in rows],
        "size": [e.size for e, _ in rows],
        "shingles": [None if e.shingles is None else e.shingles.astype("<u4").tobytes() for e, _ in rows],
        "state_version": [NEARDUP_STATE_VERSION] * len(rows),
    }
    return pa.table(cols, schema=neardup_schema())


def index_entries_from_arrow(table, *, now: datetime | None = None, window_days: float | None = None,
                             ordered: bool = True) -> list[tuple[IndexEntry, datetime]]:
    """The entries of a table in :func:`neardup_schema`, oldest ``fetched_at`` first (in the
    table's order if not ``ordered``), without those fetched more than ``window_days`` before
    ``now`` (all of them when ``window_days`` is None)."""
    if window_days is not None:
        import pyarrow.compute as pc

        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=window_days)
        table = table.filter(pc.greater_equal(table.column("fetched_at"), pa_scalar(cutoff)))
    out = []
    d = table.to_pydict()
    for i in range(table.num_rows):
        sh = d["shingles"][i]
        e = IndexEntry(d["article_id"][i], d["root"][i], d["signature"][i], d["size"][i],
                       None if sh is None else np.frombuffer(sh, dtype="<u4").astype(np.uint32),
                       d["source_id"][i], d["when"][i])
        out.append((e, d["fetched_at"][i]))
    if ordered:
        out.sort(key=lambda r: (r[1], r[0].article_id))
    return out


def pa_scalar(t: datetime):
    import pyarrow as pa

    return pa.scalar(t, type=pa.timestamp("us", tz="UTC"))


def index_from_entries(entries: Iterable[tuple[IndexEntry, datetime]], config: NearDupConfig | None = None
                       ) -> NearDupIndex:
    """A :class:`NearDupIndex` holding ``entries`` (from :func:`index_entries_from_arrow`)."""
    idx = NearDupIndex(config or NearDupConfig())
    idx.load(e for e, _ in entries)
    return idx
