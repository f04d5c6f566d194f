"""The seen log: what each committed articles file holds that a run's exact dedup needs, gathered
into a few files under ``OUTPUT/_state/seen/``.

A run reads the ids and content hashes of every article ever stored (exact dedup covers all
history), and the newest fetch time of each file (to know which files hold rows of the near-
duplicate window). Read file by file, that is one request per file on ``gs://``, where output is
never compacted: 20 sources polled every 10 minutes leave about 2,880 files a day, a million in a
year, and the read before a run could fetch anything would grow to most of an hour.

So :func:`akhbar.transforms.state.load_prior` keeps, per committed file, a **summary** (its ids,
content hashes and newest ``fetched_at``) in *segments*: Parquet files of rows ``(file, ident,
newest, article_id, content_hash)``, one row per article (a file of no rows, such as a compaction
placeholder, has one row with no id). A run reads the segments, lists the committed files, and
opens only the files no segment summarises under the same identity (local: inode, size, time;
``gs://``: size, generation, time): the files committed since the last run. It then writes their
summaries as a new segment.

What a segment says is used only for a file that is listed now with the identity the segment
recorded, so the log can never claim an article that is not in a committed file: a file removed
or rewritten (by hand, or merged by a compaction) is simply read again, or no longer counted. A
segment that cannot be read, or was written by another version of this format, is ignored (its
files are read again) and dropped at the next merge. Two runs writing segments at once (they
cannot: the output lease serialises runs) would only summarise some files twice.

Merging keeps the number of segments small: once there are more than :data:`MAX_SEGMENTS`, the
segments other than the biggest are merged into one, and the biggest joins them only when the
others hold at least as many rows (so each row is rewritten a logarithmic number of times, as in
:func:`akhbar.transforms.compact.choose_inputs`). A merge keeps only the summaries of files listed
now; its inputs are deleted once the merged segment is written. All of it is a cache: a failure
to write or delete is ignored, and deleting ``_state/seen/`` only costs the next run one read per
file.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from akhbar.transforms import store

SEEN_LOG = ("_state", "seen")
FORMAT = b"1"  # bump when what a summary holds, or how an identity is written, changes
MAX_SEGMENTS = 8
SCHEMA = pa.schema([
    ("file", pa.string()),  # path relative to OUTPUT/articles, with "/"
    ("ident", pa.string()),
    ("newest", pa.timestamp("us", tz="UTC")),  # the file's newest fetched_at (none: no rows)
    ("article_id", pa.string()),  # none: the row only records a file of no rows
    ("content_hash", pa.string()),
], metadata={b"akhbar.seen": FORMAT})


@dataclass(frozen=True)
class Summary:
    """What one committed articles file holds for the seen index."""

    ids: list[str]
    hashes: list[str]
    newest: datetime | None  # None: no rows


def ident_text(ident: tuple) -> str:
    return "|".join(map(str, ident))


class SeenLog:
    """The segments under ``OUTPUT/_state/seen/``: :meth:`lookup` a file's summary, :meth:`add`
    those of files read, :meth:`save` once every committed file has been looked up."""

    def __init__(self, output: str):
        self.folder = store.join(output, *SEEN_LOG)
        self.segments: list[tuple[str, pa.Table | None]] = []  # (path, rows), None: unusable
        self.known: dict[tuple[str, str], Summary] = {}
        self.fresh: dict[tuple[str, str], Summary] = {}
        self.listed: set[tuple[str, str]] = set()

    def read(self) -> SeenLog:
        try:
            paths = store.list_files(self.folder)
        except OSError:
            paths = []
        self.segments = list(zip(paths, store.map_files(_read_segment, paths)))
        for _, table in self.segments:
            if table is not None:
                self.known.update(_summaries(table))
        return self

    def lookup(self, file: str, ident: tuple) -> Summary | None:
        key = (file, ident_text(ident))
        self.listed.add(key)
        return self.known.get(key)

    def add(self, file: str, ident: tuple, summary: Summary) -> None:
        key = (file, ident_text(ident))
        self.listed.add(key)
        self.fresh[key] = summary

    def save(self) -> None:
        """Write the summaries added as a new segment, then merge segments if there are too many."""
        segments = list(self.segments)
        if self.fresh:
            table = _table(self.fresh)
            path = self._write(table)
            if path:
                segments.append((path, table))
        if len(segments) > MAX_SEGMENTS:
            self._merge(segments)

    def _write(self, table: pa.Table) -> str | None:
        name = f"seen-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}.parquet"
        path = store.join(self.folder, name)
        try:
            store.write_atomic(path, store.table_bytes(table))
        except OSError:  # a cache: the next run reads those files again
            return None
        return path

    def _merge(self, segments: list[tuple[str, pa.Table | None]]) -> None:
        chosen = merge_inputs([(path, -1 if table is None else table.num_rows) for path, table in segments])
        tables = dict(segments)
        keep = pa.array(sorted(f"{file}\0{ident}" for file, ident in self.listed), type=pa.string())
        parts = []
        for path in chosen:
            table = tables[path]
            if table is not None and table.num_rows:
                keys = pc.binary_join_element_wise(table.column("file"), table.column("ident"), "\0")
                parts.append(table.filter(pc.is_in(keys, value_set=keep)))
        if parts and sum(p.num_rows for p in parts) and not self._write(pa.concat_tables(parts)):
            return  # not written: the inputs stay
        for path in chosen:
            try:
                store.delete(path)
            except OSError:
                pass


def merge_inputs(sizes: list[tuple[str, int]]) -> list[str]:
    """The segments to merge, given (path, rows; -1 if unusable): all but the biggest, and the
    biggest too when the others hold as many rows as it does."""
    if len(sizes) < 2:
        return [path for path, _ in sizes]
    ordered = sorted(sizes, key=lambda s: s[1])
    *others, (biggest, rows) = ordered
    chosen = [path for path, _ in others]
    if sum(max(0, n) for _, n in others) >= rows:
        chosen.append(biggest)
    return chosen


def _read_segment(path: str) -> pa.Table | None:
    try:
        table = store.read_table(path)
    except FileNotFoundError:  # merged away by another run meanwhile
        return None
    except (OSError, ValueError, pa.ArrowException):
        return None
    if (table.schema.metadata or {}).get(b"akhbar.seen") != FORMAT or not table.schema.equals(SCHEMA):
        return None
    return table


def _summaries(table: pa.Table) -> dict[tuple[str, str], Summary]:
    out: dict[tuple[str, str], Summary] = {}
    cols = [table.column(name).to_pylist() for name in SCHEMA.names]
    for file, ident, newest, aid, chash in zip(*cols):
        s = out.get((file, ident))
        if s is None:
            s = out[(file, ident)] = Summary([], [], newest)
        if aid is not None:
            s.ids.append(aid)
            s.hashes.append(chash)
    return out


def _table(summaries: dict[tuple[str, str], Summary]) -> pa.Table:
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for (file, ident), s in sorted(summaries.items()):
        rows = list(zip(s.ids, s.hashes)) or [(None, None)]
        for aid, chash in rows:
            cols["file"].append(file)
            cols["ident"].append(ident)
            cols["newest"].append(s.newest)
            cols["article_id"].append(aid)
            cols["content_hash"].append(chash)
    return pa.table(cols, schema=SCHEMA)
