"""Reading and writing the output tree, locally or on ``gs://``, through Beam's filesystems.

Atomicity: a data file becomes visible under its final name only when complete. Locally it is
written to a hidden ``.NAME.UUID.inprogress`` file in the same folder, flushed to disk and
renamed (``os.replace`` is atomic on POSIX). On object stores an object is visible only once its
upload completes, so it is written under its final name directly. Readers skip names that start
with ``.`` or ``_`` (pyarrow's default) and only read ``*.parquet``.
"""
from __future__ import annotations

import io
import os
import posixpath
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

ROW_GROUP_SIZE = 50_000


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return os.path.join(_local(base), *parts)
    return posixpath.join(base, *parts)


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    if is_local(path):
        path = _local(path)
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.inprogress")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    with FileSystems.create(path, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


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


def iter_tables(root: str, columns: list[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
    for path in list_files(root):
        yield path, read_table(path, columns)
