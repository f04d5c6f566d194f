"""Compaction: merge a partition's small Parquet files into few, while readers keep reading.

Hive readers (pyarrow datasets, DuckDB ``read_parquet('…/**/*.parquet')``, Spark) list a folder
and then open the files they listed by name, DuckDB more than once per query. No sequence of
single-file operations moves rows from several files into one without a moment where a new
listing shows them twice (merged file visible before the inputs go) or not at all (inputs gone
before the merged file appears). So the switch is made on the whole folder at once:

1. Into a staging folder outside the dataset (``OUTPUT/_state/compact/UUID/``) go the merged
   files (written atomically and flushed), a **placeholder** under each input's name, and a hard
   link to every other file of the partition. A placeholder is the input's bytes followed by the
   footer of a zero-row Parquet file: to anyone opening it afresh it is a valid file of no rows,
   while every byte range the input's own footer points to is unchanged.
2. Under an exclusive lock on the live folder (writers hold it shared from creating their
   temporary file to renaming it, see :func:`akhbar.transforms.store.write_atomic`), files
   committed since step 1 are linked into the staging folder, then the two folders are swapped
   with one ``renameat2(RENAME_EXCHANGE)``: atomic, never a moment without the folder.
3. The old folder is deleted (open file handles keep working). Placeholders are deleted by a
   later compaction once they are more than an hour old.

A placeholder costs as much disk as its input for that hour, and it cannot cost less: a reader
that read the input's footer before the swap reads the input's column chunks from the
placeholder after it, so those bytes must be there under that name, while a reader opening the
name afresh must find a footer of no rows. A hard link to the input, or the input renamed, is the
input itself: left as it is, it shows its rows a second time after the swap (the merged file has
them too); with the zero-row footer appended before the swap, the live folder shows none of its
rows until the swap. On a file system with copy-on-write clones the shared blocks would become
the placeholder's alone once the old folder is deleted. What can be kept small is how often the
same rows are merged again. Rewriting a partition's whole merged file whenever a few small files
arrived (its placeholder a full copy of the day so far, for an hour, every time) kept up to 8.4x
the live data on disk with a compaction every 10 minutes, 3.0x since (``bench/compact_disk.py``).
So the inputs are chosen by size (:func:`choose_inputs`): smallest first, a file joins only while
it holds at most ``TIER_RATIO`` times the rows of the inputs chosen before it together, so a big
merged file waits until enough new rows have gathered to be worth rewriting it. Each row is then
rewritten a logarithmic number of times, a live partition keeps a few files of growing sizes,
and the bytes held by placeholders stay near the rows that arrived within the hour. A partition
that nothing was written to for an hour (``stale_s``) is merged whole, into as few files as
``target_rows`` allows.

A compaction holds a lock on its staging folder from creating it to deleting it. A compaction
killed on the way (even by SIGKILL) leaves its staging folder, with merged copies or the old
folder's files in it; the next compaction deletes every staging folder that is more than an hour
old and whose lock it can take (its owner is dead), before it starts.

What a concurrent reader can observe:

- A reader whose listing happens after the swap, or whose listing and opens all happen before
  it, sees every row exactly once.
- A reader that lists before the swap and opens some listed files after it gets, for each such
  file, either the input's rows (it read the input's footer before the swap and its data after:
  the bytes are the same) or nothing (it opened the placeholder afresh). Those rows are then
  **missing from that one read**. It never sees a row twice and never gets an error: every name
  it listed still opens, and nothing it already read has changed under it.
- akhbar's own readers (the seen index of :func:`akhbar.transforms.state.load_prior`,
  ``akhbar report``, ``akhbar sources health``) read each folder under its shared lock
  (:func:`akhbar.transforms.store.map_committed`), so no swap falls inside their read: they see
  every row exactly once, and runs never re-fetch an article because of a compaction.
- A placeholder is deleted only when more than an hour old; only a reader that held one listing
  that long could then fail to open it.

Concurrent writers never fail: the swap waits (up to a timeout, then skips the partition) until
no writer is between creating and renaming a file, and no akhbar reader is reading the folder. A
temporary file found while the lock is held exclusively belongs to a writer that died; it is not
carried into the new folder.

Local output only: object stores cannot swap a folder atomically (``gs://`` is refused), and the
swap needs Linux (``renameat2``).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from akhbar.transforms import store

DATASETS = {"articles": ("article_id",), "dead_letter": ("url", "time")}
DEFAULT_TARGET_ROWS = 100_000
DEFAULT_MIN_FILES = 2
# a small file joins a merge only if it holds at most this many times the rows of the smaller inputs together
TIER_RATIO = 3.0

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class CompactionUnsupported(RuntimeError):
    """This output (object store, or a platform without an atomic folder swap) cannot be compacted."""


def exchange(a: str, b: str) -> None:
    """Swap two paths on one file system atomically (Linux ``renameat2`` with RENAME_EXCHANGE)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError) as e:
        raise CompactionUnsupported("this platform has no renameat2(RENAME_EXCHANGE)") from e
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise CompactionUnsupported(f"this file system cannot swap folders atomically: {os.strerror(err)}")
        raise OSError(err, os.strerror(err), a)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_data(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


@dataclass
class PartitionReport:
    dataset: str
    partition: str  # e.g. dt=2026-11-24/source=x
    status: str  # compacted, skipped
    why: str = ""
    inputs: int = 0
    rows: int = 0
    outputs: list[str] = field(default_factory=list)
    stale_temporaries_removed: int = 0
    placeholders_removed: int = 0
    seconds: float = 0.0


def find_partitions(output: str, selectors: list[list[tuple[str, str]]] | None = None) -> list[tuple[str, str]]:
    """``[(dataset, "dt=…/source=…")]`` of every leaf partition folder matching any selector.

    A selector is a list of ``(key, value)`` pairs; a partition matches when it has all of them
    (``dt=2026-11-24`` selects every source of that day, and the dead letters of that day).
    """
    found = []
    for dataset in DATASETS:
        root = os.path.join(output, dataset)
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
            if folder == root or not any(_is_data(f) or store.is_temporary(f) for f in files):
                continue
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            try:
                pairs = store.parse_partition(rel)
            except store.UnsafePartition:
                continue  # not a folder akhbar wrote
            if selectors is None or any(set(sel) <= set(pairs) for sel in selectors):
                found.append((dataset, rel))
    return sorted(found)


class _Lock:
    """One compaction per partition at a time (an advisory lock file under ``_state/``)."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def close(self) -> None:
        os.close(self.fd)  # releases the lock


def _version(raw: bytes | None) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in raw.decode().split("."))
    except (AttributeError, ValueError):
        return ()


def _merged_tables(paths: list[str], sort_keys: tuple[str, ...]) -> pa.Table:
    """Every input row once, in one table whose schema covers every input (a newer minor
    version's added columns are kept; older files get nulls there)."""
    tables = [store.read_table(p) for p in paths]  # an unreadable input is named
    schema = pa.unify_schemas([t.schema for t in tables], promote_options="permissive")
    newest = max(tables, key=lambda t: _version((t.schema.metadata or {}).get(b"akhbar.schema_version")))
    schema = schema.with_metadata(newest.schema.metadata)
    merged = pa.concat_tables(tables, promote_options="permissive").select(schema.names).cast(schema)
    return merged.sort_by([(k, "ascending") for k in sort_keys])


def choose_inputs(small: list[tuple[str, int, float]], now: float, quiet_s: float,
                  ratio: float = TIER_RATIO) -> list[str]:
    """Which of a partition's small files to merge now, from their ``(path, rows, mtime)``.

    All of them once the newest is more than ``quiet_s`` old (nothing written for that long: the
    partition is merged whole, once). Otherwise the smallest first, each next one only while its
    rows are at most ``ratio`` times those of the ones chosen before it together: a file far
    bigger than the new ones is not rewritten (and copied into a placeholder) for a few rows.
    Rows, not bytes: a file of a few rows is mostly fixed overhead (footer, statistics), which a
    merge does not carry over, so its bytes overstate what it adds to the merged file."""
    if not small:
        return []
    if now - max(mtime for _, _, mtime in small) > quiet_s:
        return sorted(path for path, _, _ in small)
    chosen: list[str] = []
    total = 0
    for path, rows, _ in sorted(small, key=lambda f: (f[1], f[0])):
        if chosen and rows > ratio * total:
            break
        chosen.append(path)
        total += rows
    return sorted(chosen)


def placeholder_bytes(path: str) -> bytes:
    """An input's bytes with a zero-row footer appended: a valid Parquet file of no rows.

    Readers that list a folder and then open files by name, sometimes more than once (DuckDB
    reads a file's footer when planning and its column chunks when scanning), may open the input
    before the swap and its placeholder after. Every byte range the input's own footer points
    to is unchanged in the placeholder, so such a reader reads the input's rows; a reader that
    first opens the placeholder sees its footer (no rows). Neither fails.
    """
    empty = store.table_bytes(pq.read_schema(path).empty_table())
    if empty[:4] != b"PAR1" or empty[-4:] != b"PAR1":
        raise ValueError("unexpected Parquet layout")
    with open(path, "rb") as f:
        data = f.read()
    return data + empty[4:]  # the old file, then footer + footer length + magic of an empty file


_STAGING_NAME = re.compile(r"^[0-9a-f]{32}$")  # OUTPUT/_state/compact/UUID


def _lock_staging(folder: str) -> int:
    """An open descriptor of a new staging folder holding its lock (kept until it is deleted)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def remove_stale_staging(output: str, max_age_s: float = store.STALE_TEMP_SECONDS,
                         now: float | None = None) -> list[str]:
    """Delete the staging folders that killed compactions left under ``OUTPUT/_state/compact/``;
    return their paths.

    A folder goes only when it is older than ``max_age_s`` and its lock can be taken, i.e. no live
    compaction holds it (a compaction locks its folder right after creating it; the age covers
    that moment). A dead compaction's staging folder holds either copies of rows that are still in
    the live partition (killed before the swap) or the partition's old files (killed after it):
    nothing a reader or the dataset needs.
    """
    state = os.path.join(output, "_state", "compact")
    now = time.time() if now is None else now
    removed = []
    try:
        names = sorted(os.listdir(state))
    except FileNotFoundError:
        return removed
    for name in filter(_STAGING_NAME.match, names):
        path = os.path.join(state, name)
        try:
            if now - os.stat(path).st_mtime <= max_age_s:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):  # removed meanwhile, or not a folder
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live compaction's
            os.close(fd)
            continue
        try:
            shutil.rmtree(path)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


class _FolderLock:
    """The exclusive side of the lock that writers (:func:`akhbar.transforms.store.write_atomic`)
    and readers (:func:`akhbar.transforms.store.map_committed`) hold shared.

    Readers first pass a gate, a shared lock on the parent folder that they let go of once they
    hold the folder's: the gate is locked exclusively here while waiting for the folder, so readers
    that come one after another (each holds the folder for a whole read) cannot hold the swap off
    for ever; those arriving meanwhile wait at the gate until the swap is done."""

    def __init__(self, folder: str, timeout_s: float):
        self.gate = os.open(os.path.dirname(folder), os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except BaseException:
            os.close(self.gate)
            raise
        self.timeout_s = timeout_s

    def acquire(self) -> bool:
        deadline = time.monotonic() + self.timeout_s
        return _flock_by(self.gate, deadline) and _flock_by(self.fd, deadline)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.gate)


def _flock_by(fd: int, deadline: float) -> bool:
    """Lock ``fd`` exclusively, trying until ``deadline`` (time.monotonic)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)


def compact_partition(output: str, dataset: str, partition: str, *, min_files: int = DEFAULT_MIN_FILES,
                      target_rows: int = DEFAULT_TARGET_ROWS, stale_s: float = store.STALE_TEMP_SECONDS,
                      now: float | None = None, lock_timeout_s: float = 10.0) -> PartitionReport:
    """Compact one partition folder (see the module docstring for what readers can observe)."""
    started = time.monotonic()
    now = time.time() if now is None else now
    report = PartitionReport(dataset, partition, "skipped")
    pairs = store.parse_partition(partition)
    live = store.partition_path(os.path.join(output, dataset), pairs)
    state = os.path.join(output, "_state", "compact")
    lock = _Lock(os.path.join(state, "locks", f"{dataset}__{partition.replace('/', '__')}.lock"))
    try:
        if not lock.acquire():
            report.why = "another compaction holds this partition"
            return report
        report.stale_temporaries_removed = len(store.remove_stale_temporaries(live, stale_s, now))
        small, empties = [], []
        for name in sorted(filter(_is_data, os.listdir(live))):
            path = os.path.join(live, name)
            try:
                rows = pq.read_metadata(path).num_rows
            except pa.ArrowInvalid as e:  # not Parquet: stop, naming it (a merge would lose or keep it blindly)
                raise store.UnreadableFile(f"{path} is not a readable Parquet file ({e})") from e
            if rows == 0:
                empties.append(path)
            elif rows < target_rows:
                small.append((path, rows, os.stat(path).st_mtime))
        for path in empties:  # placeholders of an earlier compaction, once no reader can hold them
            if now - os.stat(path).st_mtime > stale_s:
                os.unlink(path)
                report.placeholders_removed += 1
        if len(small) < min_files:
            report.why = f"{len(small)} small file(s), fewer than {min_files}"
            return report
        chosen = choose_inputs(small, now, stale_s)
        if len(chosen) < min_files:
            report.why = (f"{len(small)} small files, but only {len(chosen)} small enough next to the others "
                          f"to merge now, fewer than {min_files}")
            return report
        small = chosen

        merged = _merged_tables(small, DATASETS[dataset])
        stage_root = os.path.join(state, uuid.uuid4().hex)
        stage = os.path.join(stage_root, "partition")
        os.makedirs(stage_root)
        stage_fd = _lock_staging(stage_root)
        try:
            os.mkdir(stage)
            # the staged folder = the live folder after compaction: merged files, a placeholder
            # under each input's name, and every other file (hard links: the same bytes)
            run = f"compact-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
            id_col = DATASETS[dataset][0]
            for chunk, start in enumerate(range(0, merged.num_rows, target_rows)):
                part = merged.slice(start, target_rows)
                ids = "\n".join(str(v) for v in part.column(id_col).to_pylist())
                name = f"part-{run}-{chunk:05d}-{hashlib.sha256(ids.encode()).hexdigest()[:12]}.parquet"
                store.write_atomic(os.path.join(stage, name), store.table_bytes(part))
                report.outputs.append(name)
            for path in small:
                store.write_atomic(os.path.join(stage, os.path.basename(path)), placeholder_bytes(path))
            folder_lock = _FolderLock(live, lock_timeout_s)
            try:
                if not folder_lock.acquire():
                    report.why, report.outputs = "writers or readers kept the partition busy", []
                    return report
                # no writer is between creating its temporary file and renaming it now
                for name in os.listdir(live):
                    if not name.startswith(".") and not os.path.exists(os.path.join(stage, name)):
                        os.link(os.path.join(live, name), os.path.join(stage, name))
                _fsync_dir(stage)
                exchange(stage, live)  # the live folder is now the compacted one; `stage` holds the old
                _fsync_dir(os.path.dirname(live))
            finally:
                folder_lock.close()
        finally:
            shutil.rmtree(stage_root, ignore_errors=True)
            os.close(stage_fd)
        report.status, report.inputs, report.rows = "compacted", len(small), merged.num_rows
        return report
    finally:
        lock.close()
        report.seconds = round(time.monotonic() - started, 3)


def compact(output: str, selectors: list[list[tuple[str, str]]] | None = None, *,
            min_files: int = DEFAULT_MIN_FILES, target_rows: int = DEFAULT_TARGET_ROWS,
            stale_s: float = store.STALE_TEMP_SECONDS) -> list[PartitionReport]:
    """Compact every selected partition of ``output`` (``articles/`` and ``dead_letter/``), after
    deleting the staging folders of compactions that were killed (:func:`remove_stale_staging`)."""
    if not store.is_local(output):
        raise CompactionUnsupported("compaction needs a local output folder (object stores cannot "
                                    "swap a folder atomically)")
    output = output[len("file://"):] if output.startswith("file://") else output
    remove_stale_staging(output, stale_s)
    return [compact_partition(output, dataset, partition, min_files=min_files, target_rows=target_rows,
                              stale_s=stale_s)
            for dataset, partition in find_partitions(output, selectors)]
