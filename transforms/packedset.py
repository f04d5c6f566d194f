"""A large read-only set of short strings (article ids, content hashes) in one sorted numpy array.

A run holds the id and the content hash of every stored article. As Python strings in sets they
take about 160 bytes an article (two string objects and two hash-table slots): 330 MB for a
million articles, pickled again for every worker and walked object by object. Here they are
fixed-width bytes in one sorted array (32 and 64 bytes an article for akhbar's hex ids and
hashes): pickled as one buffer, looked up by binary search (a few microseconds; a run looks up
a few thousand), and still a :class:`collections.abc.Set` of ``str``, so it compares equal to a
set of the same strings and iterates as strings.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Set

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_EMPTY = np.array([], dtype="S1")


def _binary(array) -> pa.Array:
    """An Arrow string/binary (chunked) array as one non-null ``binary`` or ``large_binary`` array."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], pa.string())
    array = array.drop_null()
    wide = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    return array.cast(pa.large_binary() if wide else pa.binary())


def _from_arrow(array) -> np.ndarray:
    """Fixed-width bytes of an Arrow array of strings, taken from its buffers when every value has
    the same length (akhbar's ids and hashes), else value by value."""
    array = _binary(array)
    n = len(array)
    if n == 0:
        return _EMPTY
    lengths = pc.binary_length(array)
    shortest, longest = (v.as_py() for v in pc.min_max(lengths).values())
    if longest == 0:
        return np.zeros(n, dtype="S1")
    kind = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=kind)[array.offset:array.offset + n + 1]
    if shortest == longest and int(offsets[-1] - offsets[0]) == n * longest:
        return np.frombuffer(array.buffers()[2], dtype=f"S{longest}", count=n, offset=int(offsets[0]))
    return np.array(array.to_pylist(), dtype=f"S{longest}")


def _from_strings(values: list[str]) -> np.ndarray | None:
    """Fixed-width UTF-8 of ``values``; None if one cannot be packed (a NUL character, a lone
    surrogate)."""
    try:
        encoded = [v.encode("utf-8") for v in values]
    except UnicodeEncodeError:
        return None
    if not encoded:
        return _EMPTY
    if any(b"\x00" in e for e in encoded):
        return None
    return np.array(encoded, dtype=f"S{max(1, max(map(len, encoded)))}")


class PackedSet(Set):
    """A read-only set of strings without NUL characters (see the module docstring)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: np.ndarray = _EMPTY):
        self._keys = keys  # sorted, unique, dtype S<width>

    @classmethod
    def of(cls, *parts) -> Set[str]:
        """The union of ``parts``: Arrow arrays of strings, packed sets, or iterables of ``str``.
        A string holding a NUL character (fixed-width bytes are NUL-padded) or a lone surrogate (no
        UTF-8) cannot be packed: then the union is a plain ``frozenset``."""
        arrays = []
        for part in parts:
            if isinstance(part, PackedSet):
                arrays.append(part._keys)
            elif isinstance(part, (pa.Array, pa.ChunkedArray)):
                has_nul = len(part) and pc.any(pc.match_substring(part.cast(pa.string()), "\x00")).as_py()
                arrays.append(None if has_nul else _from_arrow(part))
            else:
                arrays.append(_from_strings(list(part)))
            if arrays[-1] is None:  # cannot be packed
                return frozenset().union(*(_strings(p) for p in parts))
        arrays = [a for a in arrays if len(a)]
        if not arrays:
            return cls()
        if len(arrays) == 1 and len(parts) == 1 and isinstance(parts[0], PackedSet):
            return parts[0]
        width = max(a.dtype.itemsize for a in arrays)
        return cls(_sorted_unique(np.concatenate([a.astype(f"S{width}", copy=False) for a in arrays])))

    def __contains__(self, item) -> bool:
        if not isinstance(item, str) or "\x00" in item:
            return False
        try:
            key = item.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: never packed
            return False
        keys = self._keys
        if len(key) > keys.dtype.itemsize or not len(keys):
            return False
        i = int(np.searchsorted(keys, key))
        return i < len(keys) and keys[i] == key

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return (k.decode("utf-8") for k in self._keys.tolist())

    def __repr__(self) -> str:
        return f"PackedSet({len(self)} strings)"

    def __reduce__(self):
        return PackedSet, (self._keys,)

    @classmethod
    def _from_iterable(cls, values) -> frozenset[str]:  # what Set's operators (&, |, -) return
        return frozenset(values)

    __hash__ = Set._hash


class GrowingSet(Set):
    """A set that starts as ``base`` (a :class:`PackedSet`, say) and takes strings added later
    into a plain set beside it: what a streaming job holds of the stored ids, which its cycles
    add to, without turning the packed ids back into strings. Lookups may run in other threads
    while :meth:`update` adds."""

    def __init__(self, base: Set[str] = frozenset()):
        self.base: Set[str] = base
        self.added: set[str] = set()

    def __contains__(self, item) -> bool:
        return item in self.added or item in self.base

    def __iter__(self) -> Iterator[str]:
        yield from self.base
        yield from (v for v in list(self.added) if v not in self.base)

    def __len__(self) -> int:
        return len(self.base) + sum(1 for v in list(self.added) if v not in self.base)

    def update(self, values: Iterable[str]) -> None:
        self.added.update(values)

    @classmethod
    def _from_iterable(cls, values) -> frozenset[str]:
        return frozenset(values)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted, each value once (``np.unique`` hashes fixed-width bytes: 5 times slower)."""
    keys = np.sort(keys)
    keep = np.empty(len(keys), dtype=bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _strings(part) -> Iterable[str]:
    if isinstance(part, (pa.Array, pa.ChunkedArray)):
        return [v for v in part.to_pylist() if v is not None]
    return part
