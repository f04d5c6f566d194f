"""Reading and writing the output tree, locally or on ``gs://``, through Beam's filesystems.

Atomicity: a data file becomes visible under its final name only when complete. Locally it is
written to a hidden ``.NAME.UUID.inprogress`` file in the same folder, flushed to disk and
renamed (``os.replace`` is atomic on POSIX). On object stores an object is visible only once its
upload completes, so it is written under its final name directly. Readers skip names that start
with ``.`` or ``_`` (pyarrow's default) and only read ``*.parquet``.
"""
from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

try:
    import fcntl
except ImportError:  # not POSIX: no folder locks (and no compaction, which needs them)
    fcntl = None

ROW_GROUP_SIZE = 50_000


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return os.path.join(_local(base), *parts)
    return posixpath.join(base, *parts)


def _lock_folder_shared(folder: str) -> int:
    """An open descriptor of ``folder`` holding a shared lock; retried if the folder was swapped
    (by a compaction) between opening and locking it, so the lock is on the live folder."""
    while True:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_ino == os.stat(folder).st_ino:
            return fd
        os.close(fd)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    if is_local(path):
        path = _local(path)
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.inprogress")
        # A shared lock on the folder while the temporary file exists: compaction takes it
        # exclusively to swap the folder, so it never swaps one away under a writer.
        folder_fd = _lock_folder_shared(folder) if fcntl is not None else None
        try:
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        finally:
            if folder_fd is not None:
                os.close(folder_fd)
        return
    with FileSystems.create(path, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


def delete(path: str) -> None:
    if is_local(path):
        os.unlink(_local(path))
    else:
        FileSystems.delete([path])


def read_bytes(path: str) -> bytes:
    if is_local(path):
        with open(_local(path), "rb") as f:
            return f.read()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def exists(path: str) -> bool:
    return os.path.exists(_local(path)) if is_local(path) else FileSystems.exists(path)


def list_files(root: str, suffix: str = ".parquet") -> list[str]:
    """Committed data files under ``root`` (hidden and ``_``-prefixed names skipped), sorted."""
    if is_local(root):
        root = _local(root)
        out = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            out.extend(os.path.join(folder, f) for f in files if f.endswith(suffix) and not f.startswith((".", "_")))
        return sorted(out)
    matches = FileSystems.match([root.rstrip("/") + "/**"])[0].metadata_list
    keep = []
    for m in matches:
        rel = m.path[len(root.rstrip("/")) + 1:]
        if m.path.endswith(suffix) and not any(p.startswith((".", "_")) for p in rel.split("/")):
            keep.append(m.path)
    return sorted(keep)


def table_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_SIZE,
                   use_dictionary=["source_id", "language", "schema_version", "published_source",
                                   "encoding", "declared_language", "run_id", "stage", "reason"])
    return sink.getvalue()


def read_table(path: str, columns: list[str] | None = None) -> pa.Table:
    if is_local(path):
        return pq.read_table(_local(path), columns=columns)
    return pq.read_table(io.BytesIO(read_bytes(path)), columns=columns)


@contextlib.contextmanager
def open_parquet(path: str) -> Iterator[pq.ParquetFile]:
    """One open Parquet file: every read from it sees the same bytes, even if the name is
    replaced meanwhile."""
    with (open(_local(path), "rb") if is_local(path) else io.BytesIO(read_bytes(path))) as raw:
        f = pq.ParquetFile(raw)
        try:
            yield f
        finally:
            f.close()


def iter_tables(root: str, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
    for path in list_files(root):
        yield path, read_table(path, columns)


# --- partitions built from data -----------------------------------------------------------------

_SOURCE_VALUE = re.compile(r"^[a-z0-9_-]+$")
TEMP_SUFFIX = ".inprogress"
STALE_TEMP_SECONDS = 3600


class UnsafePartition(ValueError):
    """A partition value taken from data that must not become part of a path."""


def _check_value(key: str, value: object) -> str:
    if key == "dt":
        text = value.isoformat() if isinstance(value, date) and not isinstance(value, datetime) else value
        if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise UnsafePartition(f"dt={value!r} is not a YYYY-MM-DD date")
        try:
            date.fromisoformat(text)
        except ValueError as e:
            raise UnsafePartition(f"dt={value!r} is not a real date") from e
        return text
    if key == "source":
        if not isinstance(value, str) or not _SOURCE_VALUE.fullmatch(value):
            raise UnsafePartition(f"source={value!r} must be lowercase letters, digits, '_' or '-'")
        return value
    raise UnsafePartition(f"unknown partition key {key!r}")


def partition_folders(parts: list[tuple[str, object]]) -> tuple[str, ...]:
    """``[("dt", date), ("source", "x")]`` → ``("dt=…", "source=x")`` after validating each value.

    Only known keys with well-formed values pass (a source id matches ``^[a-z0-9_-]+$``, a dt is
    a real calendar date), so a value read from data can never add a path separator, ``..``
    or an absolute path to an output path.
    """
    return tuple(f"{k}={_check_value(k, v)}" for k, v in parts)


def parse_partition(spec: str) -> list[tuple[str, str]]:
    """``"dt=2026-11-24/source=x"`` → ``[("dt", "2026-11-24"), ("source", "x")]``, validated."""
    out = []
    for seg in spec.strip("/").split("/"):
        key, eq, value = seg.partition("=")
        if not eq:
            raise UnsafePartition(f"{seg!r} is not KEY=VALUE")
        out.append((key, _check_value(key, value)))
    if not out:
        raise UnsafePartition("empty partition")
    return out


def partition_path(root: str, parts: list[tuple[str, object]]) -> str:
    """The folder of a partition under ``root``; raises :class:`UnsafePartition` rather than
    return a path outside ``root``."""
    folder = join(root, *partition_folders(parts))
    if is_local(root):
        base = os.path.realpath(_local(root))
        real = os.path.realpath(folder)
        if os.path.commonpath([base, real]) != base or real == base:
            raise UnsafePartition(f"partition folder {folder!r} is outside {root!r}")
    else:
        rest = folder.partition("://")[2]
        base = root.partition("://")[2].rstrip("/")
        if not posixpath.normpath(rest).startswith(base + "/"):
            raise UnsafePartition(f"partition folder {folder!r} is outside {root!r}")
    return folder


# --- leftovers of killed writers ----------------------------------------------------------------

def is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_stale_temporaries(root: str, max_age_s: float = STALE_TEMP_SECONDS,
                             now: float | None = None) -> list[str]:
    """Delete ``.NAME.UUID.inprogress`` files under ``root`` last modified more than
    ``max_age_s`` seconds ago; return their paths.

    A live writer fills its temporary file in one go and renames it within seconds, so a file
    untouched for an hour belongs to a writer that was killed. Younger ones are left alone: they
    may be another run's file in the middle of being written. Object stores have no temporary
    files (an object appears only when its upload completes), so this is local only.
    """
    if not is_local(root):
        return []
    root = _local(root)
    now = time.time() if now is None else now
    removed = []
    for folder, _, files in os.walk(root):
        for name in files:
            if not is_temporary(name):
                continue
            path = os.path.join(folder, name)
            try:
                if now - os.stat(path).st_mtime > max_age_s:
                    os.unlink(path)
                    removed.append(path)
            except FileNotFoundError:  # its writer renamed or removed it meanwhile
                pass
    return sorted(removed)


def snapshot(root: str, suffix: str = ".parquet") -> dict[str, tuple]:
    """Identity of every committed file under ``root``: a reader that takes one before and one
    after reading and finds them equal has read one consistent state (no file replaced,
    added or removed meanwhile, e.g. by a compaction)."""
    if is_local(root):
        out = {}
        for path in list_files(root, suffix):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            out[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return out
    keep = set(list_files(root, suffix))
    matches = FileSystems.match([root.rstrip("/") + "/**"])[0].metadata_list
    return {m.path: (m.size_in_bytes, m.last_updated_in_seconds) for m in matches if m.path in keep}
