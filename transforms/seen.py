"""Logs of what each committed file holds for a run's dedup, gathered into a few files under
``OUTPUT/_state/``.

Before it fetches anything, a run needs the ids and content hashes of every article ever stored
(exact dedup covers all history), the near-duplicate index entries (signature, shingles) of the
rows fetched within the window, and the window's dead letters. Read file by file, that is one or
two requests per file on ``gs://``, where output is never compacted: 20 sources polled every 10
minutes leave about 2,880 files a day, a million in a year, and the read before a run could fetch
anything would grow to most of an hour.

So :func:`akhbar.transforms.state.load_prior` keeps three logs, each a value per committed file in
*segments*, Parquet files whose rows start with the file's name and identity (``file``,
``ident``; local: inode, size, time; ``gs://``: size, generation, time):

- :class:`SeenLog` (``_state/seen/``): the file's ids, content hashes and newest ``fetched_at``,
  one row per article (a file of no rows, such as a compaction placeholder, has one row with no
  id);
- :class:`EntryLog` (``_state/neardup/``): the near-duplicate entries of a file that has rows in
  the window, computed from the stored bodies; its format names how the fingerprints were made
  (shingle size, permutations, seed, version), so entries are never compared with fingerprints
  made another way;
- :class:`FailureLog` (``_state/failures/``): the rows that name a URL of each dead-letter file
  within the window, for the pages given up on (:class:`akhbar.transforms.state.PageFailures`).

A run reads the segments, lists the committed files, and opens only a file that a log it is
needed in does not hold under its current identity: the files committed since the last run. It
then writes what it read as one new segment per log.

What a segment says is used only for a file that is listed now with the identity the segment
recorded, so no log can claim an article (or a failure) that is not in a committed file: a file removed or
rewritten (by hand, or merged by a compaction) is simply read again, or no longer counted. A
segment that cannot be read, or of another format (or an older version's per-file cache), is
ignored and deleted.

Merging keeps the number of segments small: once there are more than :data:`MAX_SEGMENTS`, the
segments other than the biggest are merged into one, and the biggest joins them only when the
others hold at least as many rows (so each row is rewritten a logarithmic number of times, as in
:func:`akhbar.transforms.compact.choose_inputs`). A merge keeps only the rows of files listed now
(and, for the entries, fetched within the window); a segment with none left is deleted without
a merge. Inputs are deleted once the merged segment is written. All of it is a cache: a failure
to write or delete is ignored, two runs writing at once (the output lease prevents it) would only
hold some files twice, and deleting the logs costs the next run one read of each file and the
window's entries computed again (about 1 ms of CPU an article).
"""
from __future__ import annotations

import uuid
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from akhbar.transforms import store
from akhbar.transforms.packedset import PackedSet

SEEN_LOG = ("_state", "seen")
ENTRY_LOG = ("_state", "neardup")
FORMAT = b"1"  # bump when what a summary holds, or how an identity is written, changes
MAX_SEGMENTS = 8
# the file's path relative to its dataset's folder (OUTPUT/articles, OUTPUT/dead_letter), with "/",
# and its identity (store.snapshot) as text
KEY_FIELDS = [("file", pa.string()), ("ident", pa.string())]
SCHEMA = pa.schema(KEY_FIELDS + [
    ("newest", pa.timestamp("us", tz="UTC")),  # the file's newest fetched_at (none: no rows)
    ("article_id", pa.string()),  # none: the row only records a file of no rows
    ("content_hash", pa.string()),
])


@dataclass(frozen=True)
class Summary:
    """What one committed articles file holds for the seen index."""

    ids: list[str]
    hashes: list[str]
    newest: datetime | None  # None: no rows


def ident_text(ident: tuple) -> str:
    return "|".join(map(str, ident))


class SegmentLog:
    """A value per committed data file (name and identity), kept in a few Parquet segments
    under one folder: :meth:`lookup` a file's value, :meth:`add` those of files read, and
    :meth:`save` once every committed file has been looked up (see the module docstring)."""

    prefix = "segment"

    def __init__(self, folder: str, fmt: bytes, schema: pa.Schema):
        self.folder, self.format = folder, fmt
        self.schema = schema.with_metadata({b"akhbar.segment": fmt})
        self.segments: list[tuple[str, pa.Table, pa.Array]] = []  # (path, rows, each row's key)
        self.unusable: list[str] = []  # damaged, of another format, or not a segment at all
        self.known: dict[tuple[str, str], object] = {}
        self.fresh: dict[tuple[str, str], object] = {}
        self.listed: set[tuple[str, str]] = set()

    # what a subclass defines: values from the rows of a segment, and rows from values
    def values(self, table: pa.Table) -> dict[tuple[str, str], object]:
        raise NotImplementedError

    def table(self, values: dict[tuple[str, str], object]) -> pa.Table:
        raise NotImplementedError

    def keep(self, table: pa.Table, keys: pa.Array, listed: pa.Array) -> pa.Array:
        """Which rows a merge keeps: those of files listed now (``listed``, as :func:`_key_array`)."""
        return pc.is_in(keys, value_set=listed)

    def read(self):
        try:
            paths = store.list_files(self.folder)
        except OSError:
            paths = []
        for path, table in zip(paths, store.map_files(self._read_segment, paths)):
            if table is None:
                self.unusable.append(path)
            else:
                self.segments.append((path, table, _keys(table)))
                self.known.update(self.values(table))
        return self

    def _read_segment(self, path: str) -> pa.Table | None:
        if not path.rsplit("/", 1)[-1].startswith(f"{self.prefix}-"):
            return None
        try:
            table = store.read_table(path)
        except (OSError, ValueError, pa.ArrowException):  # gone (merged by another run meanwhile) or damaged
            return None
        if (table.schema.metadata or {}).get(b"akhbar.segment") != self.format or not table.schema.equals(self.schema):
            return None
        return table

    # lookup and add are called from several threads at once on gs:// (store.map_committed): each
    # makes single set and dict operations only, which the interpreter does whole
    def lookup(self, file: str, ident: tuple):
        key = (file, ident_text(ident))
        self.listed.add(key)
        return self.known.get(key)

    def add(self, file: str, ident: tuple, value) -> None:
        key = (file, ident_text(ident))
        self.listed.add(key)
        self.fresh[key] = value

    def save(self) -> None:
        """Write the values added as a new segment; delete the segments that hold nothing to keep,
        and those that cannot be used; merge the others if there are too many."""
        segments = list(self.segments)
        if self.fresh:
            table = self.table(self.fresh)
            path = self._write(table)
            if path:
                segments.append((path, table, _keys(table)))
        keys_of = {path: keys for path, _, keys in segments}
        listed = _key_array(self.listed)
        kept = [(path, table, self.keep(table, keys, listed)) for path, table, keys in segments]
        self._delete(self.unusable + [path for path, _, mask in kept if not pc.any(mask).as_py()])
        kept = [k for k in kept if pc.any(k[2]).as_py()]
        if len(kept) <= MAX_SEGMENTS:
            return
        chosen = set(merge_inputs([(path, table.num_rows) for path, table, _ in kept]))
        parts, taken = [], pa.array([], pa.string())
        for path, table, mask in kept:
            if path in chosen:
                # a file in two inputs (a run killed between writing a merge and deleting its
                # inputs) is taken from the first only: its rows must not be doubled
                mask = pc.and_(mask, pc.invert(pc.is_in(keys_of[path], value_set=taken)))
                parts.append(table.filter(mask))
                taken = pa.concat_arrays([taken, pc.unique(keys_of[path].filter(mask))])
        if self._write(pa.concat_tables(parts)):
            self._delete(sorted(chosen))

    def _write(self, table: pa.Table) -> str | None:
        name = f"{self.prefix}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}.parquet"
        path = store.join(self.folder, name)
        try:
            store.write_atomic(path, store.table_bytes(table.replace_schema_metadata(self.schema.metadata)))
        except OSError:  # a cache: the next run reads those files again
            return None
        return path

    @staticmethod
    def _delete(paths: list[str]) -> None:
        for path in paths:
            try:
                store.delete(path)
            except OSError:
                pass


class SeenLog(SegmentLog):
    """Per file: its ids, content hashes and newest fetch time (a :class:`Summary`), under
    ``OUTPUT/_state/seen/``. A long-lived output holds millions of rows here, so the ids and hashes
    of the files found in the log are not made into a summary each: :meth:`lookup` gives a summary
    with only the newest fetch time, and :meth:`stored` gathers the ids and hashes of every file
    looked up and found, straight from the segments' columns."""

    prefix = "seen"

    def __init__(self, output: str):
        super().__init__(store.join(output, *SEEN_LOG), FORMAT, SCHEMA)

    def values(self, table: pa.Table) -> dict[tuple[str, str], Summary]:
        per_file = table.group_by(["file", "ident"], use_threads=False).aggregate([("newest", "max")])
        return {(file, ident): Summary([], [], newest) for file, ident, newest in
                zip(*(per_file.column(name).to_pylist() for name in ("file", "ident", "newest_max")))}

    def table(self, values: dict[tuple[str, str], Summary]) -> pa.Table:
        return _rows_table(self.schema, {key: [(s.newest, aid, chash) for aid, chash in zip(s.ids, s.hashes)]
                                         for key, s in values.items()})

    def stored(self) -> tuple[AbstractSet[str], AbstractSet[str]]:
        """The ids and the content hashes of the files looked up and found in the log, packed
        straight from the segments' columns (:class:`akhbar.transforms.packedset.PackedSet`)."""
        found = _key_array(key for key in self.listed if key in self.known)
        ids, hashes = [], []
        for _, table, keys in self.segments:
            rows = table.filter(pc.and_(pc.is_in(keys, value_set=found), pc.is_valid(table.column("article_id"))))
            ids.append(rows.column("article_id"))
            hashes.append(rows.column("content_hash"))
        return PackedSet.of(*ids), PackedSet.of(*hashes)


class EntryLog(SegmentLog):
    """Per file: the near-duplicate index entries of its rows (``(IndexEntry, fetched_at)``, as
    :func:`akhbar.transforms.dedup.index_entries_to_arrow` writes them), under
    ``OUTPUT/_state/neardup/``, for the files with rows fetched since ``cutoff``. The format names
    how the fingerprints were made (:func:`akhbar.transforms.dedup.fingerprint_key`): segments made
    another way are not used, and deleted. A merge keeps only the rows fetched since ``cutoff``."""

    prefix = "entries"

    def __init__(self, output: str, config, cutoff: datetime):
        from akhbar.transforms.dedup import fingerprint_key, neardup_schema

        self.cutoff = cutoff
        super().__init__(store.join(output, *ENTRY_LOG), f"{FORMAT.decode()}|{fingerprint_key(config)}".encode(),
                         pa.schema(KEY_FIELDS + list(neardup_schema())))

    def values(self, table: pa.Table) -> dict[tuple[str, str], list]:
        from akhbar.transforms.dedup import index_entries_from_arrow, pa_scalar

        table = table.filter(pc.greater_equal(table.column("fetched_at"), pa_scalar(self.cutoff)))
        out: dict[tuple[str, str], list] = {}
        keys = zip(table.column("file").to_pylist(), table.column("ident").to_pylist())
        for key, row in zip(keys, index_entries_from_arrow(table, ordered=False)):
            out.setdefault(key, []).append(row)
        return out

    def table(self, values: dict[tuple[str, str], list]) -> pa.Table:
        from akhbar.transforms.dedup import index_entries_to_arrow

        parts = []
        for (file, ident), rows in sorted(values.items()):
            t = index_entries_to_arrow(rows)
            parts.append(t.add_column(0, "ident", pa.array([ident] * t.num_rows, pa.string()))
                         .add_column(0, "file", pa.array([file] * t.num_rows, pa.string())))
        return pa.concat_tables(parts).cast(self.schema)

    def keep(self, table: pa.Table, keys: pa.Array, listed: pa.Array) -> pa.Array:
        from akhbar.transforms.dedup import pa_scalar

        recent = pc.greater_equal(table.column("fetched_at"), pa_scalar(self.cutoff))
        return pc.and_(super().keep(table, keys, listed), recent)


FAILURE_LOG = ("_state", "failures")
FAILURE_SCHEMA = pa.schema(KEY_FIELDS + [
    ("url", pa.string()),  # none: the row only records a file without failures of a page
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("run_id", pa.string()),
    ("feed_url", pa.string()),
    ("time", pa.int64()),  # µs since the epoch
])


class FailureLog(SegmentLog):
    """Per dead-letter file: its rows that name a URL, as written (``(url, stage, reason, run_id,
    feed_url, time in µs)``: which of them count towards giving a page up is decided when they are
    used, so a change of that rule needs no new format), under ``OUTPUT/_state/failures/``; the
    file names are relative to ``OUTPUT/dead_letter``."""

    prefix = "failures"

    def __init__(self, output: str):
        super().__init__(store.join(output, *FAILURE_LOG), FORMAT, FAILURE_SCHEMA)

    def values(self, table: pa.Table) -> dict[tuple[str, str], list[tuple]]:
        out: dict[tuple[str, str], list[tuple]] = {}
        cols = [table.column(name).to_pylist() for name in FAILURE_SCHEMA.names]
        for file, ident, *row in zip(*cols):
            rows = out.setdefault((file, ident), [])
            if row[0] is not None:
                rows.append(tuple(row))
        return out

    def table(self, values: dict[tuple[str, str], list[tuple]]) -> pa.Table:
        return _rows_table(self.schema, values)


def _rows_table(schema: pa.Schema, rows: dict[tuple[str, str], list[tuple]]) -> pa.Table:
    """A segment of the rows of each file (the columns after ``file`` and ``ident``); a file of no
    rows gets one row of nulls, so that the segment still records it."""
    cols: list[list] = [[] for _ in schema.names]
    width = len(schema.names) - len(KEY_FIELDS)
    for (file, ident), file_rows in sorted(rows.items()):
        for row in file_rows or [(None,) * width]:
            for col, value in zip(cols, (file, ident, *row)):
                col.append(value)
    return pa.table(dict(zip(schema.names, cols)), schema=schema)


def _keys(table: pa.Table) -> pa.Array:
    """Each row's file and identity as one string (for membership tests on whole columns)."""
    return pc.binary_join_element_wise(table.column("file"), table.column("ident"), "\0")


def _key_array(keys) -> pa.Array:
    return pa.array(sorted(f"{file}\0{ident}" for file, ident in keys), type=pa.string())


def merge_inputs(sizes: list[tuple[str, int]]) -> list[str]:
    """The segments to merge, given (path, rows): all but the biggest, and the biggest too when
    the others hold as many rows as it does."""
    if len(sizes) < 2:
        return [path for path, _ in sizes]
    ordered = sorted(sizes, key=lambda s: s[1])
    *others, (biggest, rows) = ordered
    chosen = [path for path, _ in others]
    if sum(n for _, n in others) >= rows:
        chosen.append(biggest)
    return chosen
