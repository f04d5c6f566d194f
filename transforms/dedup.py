"""Exact and near-duplicate detection on normalized Arabic text.

- Exact: SHA-256 of the normalized body (:func:`content_hash`).
- Near: MinHash signatures of word shingles (:class:`MinHasher`), banded LSH
  (:class:`NearDupIndex`) and a verification step that accepts either a high Jaccard estimate
  or high containment of the shorter text (a trimmed copy of a wire story).

Everything here is deterministic across processes and runs: shingles are hashed with a keyed
BLAKE2 digest, never Python's salted ``hash()``, and the permutations come from a fixed seed.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from akhbar.transforms.arabic import tokens

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)


def content_hash(body: str) -> str:
    """SHA-256 (hex) of the normalized body: equal for texts that differ only in folds."""
    return hashlib.sha256(" ".join(tokens(body)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NearDupConfig:
    num_perm: int = 128
    shingle: int = 3  # words per shingle
    bands: int = 64  # LSH bands of num_perm // bands rows (2): candidates from Jaccard ~0.15 up
    jaccard: float = 0.5  # accept when the estimated Jaccard is at least this ...
    containment: float = 0.7  # ... or the shorter text is at least this much contained
    seed: int = 20240601

    def __post_init__(self):
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")


def shingles(text: str, k: int) -> set[bytes]:
    toks = tokens(text)
    if len(toks) < k:
        return {" ".join(toks).encode("utf-8")} if toks else set()
    return {" ".join(toks[i:i + k]).encode("utf-8") for i in range(len(toks) - k + 1)}


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
        sh = shingles(text, self.config.shingle)
        if not sh:
            return np.full(self.config.num_perm, 0xFFFFFFFF, dtype="<u4").tobytes(), 0
        hv = np.fromiter(
            (int.from_bytes(hashlib.blake2b(s, digest_size=4).digest(), "little") for s in sh),
            dtype=np.uint64, count=len(sh),
        )
        # (a*x + b) fits in uint64 because a, b, x < 2^32; then reduce mod the Mersenne prime.
        phv = (np.outer(hv, self._a) + self._b) % _MERSENNE & _MAX32
        return phv.min(axis=0).astype("<u4").tobytes(), len(sh)


def jaccard(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard similarity: the share of equal MinHash values."""
    return float(np.mean(np.frombuffer(sig_a, dtype="<u4") == np.frombuffer(sig_b, dtype="<u4")))


def containment(j: float, size_a: int, size_b: int) -> float:
    """Estimated share of the smaller shingle set contained in the other, from Jaccard."""
    if j <= 0 or min(size_a, size_b) == 0:
        return 0.0
    inter = j / (1 + j) * (size_a + size_b)
    return min(1.0, inter / min(size_a, size_b))


@dataclass
class _Entry:
    article_id: str
    root: str  # article_id of the first-seen copy of its cluster
    signature: bytes
    size: int


@dataclass
class NearDupIndex:
    """Banded LSH over MinHash signatures; ``add`` in first-seen order."""

    config: NearDupConfig = field(default_factory=NearDupConfig)
    _buckets: dict[tuple[int, bytes], list[int]] = field(default_factory=dict)
    _entries: list[_Entry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self._entries)

    def _band_keys(self, signature: bytes) -> list[tuple[int, bytes]]:
        width = 4 * self.config.num_perm // self.config.bands
        return [(i, signature[i * width:(i + 1) * width]) for i in range(self.config.bands)]

    def query(self, signature: bytes, size: int) -> str | None:
        """The root id of the best verified near-duplicate already in the index, if any."""
        if size == 0:
            return None
        seen: set[int] = set()
        best: tuple[float, int] | None = None
        for key in self._band_keys(signature):
            for idx in self._buckets.get(key, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                e = self._entries[idx]
                j = jaccard(signature, e.signature)
                if j >= self.config.jaccard or containment(j, size, e.size) >= self.config.containment:
                    if best is None or j > best[0]:
                        best = (j, idx)
        return self._entries[best[1]].root if best else None

    def add(self, article_id: str, signature: bytes, size: int, root: str | None = None) -> None:
        idx = len(self._entries)
        self._entries.append(_Entry(article_id, root or article_id, signature, size))
        if size == 0:
            return
        for key in self._band_keys(signature):
            self._buckets.setdefault(key, []).append(idx)


def assign_near_duplicates(index: NearDupIndex, items: Iterable[tuple[object, str, bytes, int]]) -> dict[str, str]:
    """Walk ``items`` = (order key, article_id, signature, size) in first-seen order.

    Returns ``{article_id: duplicate_of}`` for every item that is a near-duplicate of an
    earlier one (already in ``index`` or earlier in ``items``); ``duplicate_of`` is the first-
    seen copy of the cluster. Every item is added to ``index``.
    """
    out: dict[str, str] = {}
    for _, aid, sig, size in sorted(items, key=lambda t: (t[0], t[1])):
        root = index.query(sig, size)
        if root is not None and root != aid:
            out[aid] = root
        index.add(aid, sig, size, root=out.get(aid))
    return out
