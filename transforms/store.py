"""Reading and writing the output tree, locally or on ``gs://`` (through google-cloud-storage).

Atomicity: a data file becomes visible under its final name only when complete. Locally it is
written to a hidden ``.NAME.UUID.inprogress`` file in the same folder, flushed to disk and
renamed (``os.replace`` is atomic on POSIX). On object stores an object is visible only once its
upload completes, so it is written under its final name directly. Readers skip names that start
with ``.`` or ``_`` (pyarrow's default) and only read ``*.parquet``.

``gs://`` goes through a ``google.cloud.storage.Client`` (the ``gcp`` extra), not Beam's
FileSystems: Beam's GCS filesystem spends about 20 s per process in credential retries before it
falls back to anonymous access against an emulator. With ``STORAGE_EMULATOR_HOST`` set, the client
uses anonymous credentials and the project ``GOOGLE_CLOUD_PROJECT`` (default ``akhbar-local``);
otherwise Application Default Credentials. Storage errors come out as ``OSError`` subclasses
(``FileNotFoundError`` for a missing object), as they do locally.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import posixpath
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

T = TypeVar("T")

try:
    import fcntl
except ImportError:  # not POSIX: no folder locks (and no compaction, which needs them)
    fcntl = None

ROW_GROUP_SIZE = 50_000
GCS_NEEDS = "gs:// output needs the gcp extra: pip install 'akhbar[gcp]' (google-cloud-storage)"
GCS_CREDENTIALS = ("give credentials with `gcloud auth application-default login` or GOOGLE_APPLICATION_CREDENTIALS="
                   "KEY.json (on Google Cloud the metadata server gives them), or set STORAGE_EMULATOR_HOST to use a "
                   "Cloud Storage emulator")


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return os.path.join(_local(base), *parts)
    return posixpath.join(base, *parts)


# --- gs:// through google-cloud-storage --------------------------------------------------------

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _gcs_client():
    """One client per process and emulator setting (created lazily; never shared across a fork)."""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    key = (os.getpid(), emulator)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            try:
                from google.cloud import storage
            except ImportError as e:
                raise OSError(GCS_NEEDS) from e
            if emulator:
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "akhbar-local"),
                                        credentials=AnonymousCredentials())
            else:
                from google.auth.exceptions import GoogleAuthError

                try:
                    client = storage.Client()
                except GoogleAuthError as e:  # no Application Default Credentials: a storage error like any other
                    raise OSError(f"{_no_credentials(e)}; {GCS_CREDENTIALS}") from e
            _wide_pool(client)
            _clients[key] = client
        return client


def _wide_pool(client) -> None:
    """Room in the client's connection pool for ``GCS_READ_THREADS`` reads at once and the writers
    and the lease beside them: with the default 10, the extra connections were closed after each
    request (and a warning logged for each), so every read beyond ten opened a new one."""
    import requests

    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=2 * GCS_READ_THREADS)
    for prefix in ("https://", "http://"):
        client._http.mount(prefix, adapter)


def _no_credentials(error: Exception) -> str:
    """google-auth's reason, in one line; its usual one (none found anywhere) shortened."""
    reason = " ".join(str(error).split())
    if not reason or reason.startswith("Your default credentials were not found"):
        return "no Google Cloud credentials found"
    return f"no usable Google Cloud credentials ({reason})"


def gcs_client_problem(path: str) -> str | None:
    """Why ``path`` on gs:// cannot be used from this machine (no gcp extra, no credentials), in
    one line naming it; ``None`` when a client can be made. Looks for credentials as the run
    would (with STORAGE_EMULATOR_HOST: none needed) and sends no request to Cloud Storage."""
    auth_log = logging.getLogger("google.auth._default")  # it warns of every place it found nothing
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        _gcs_client()
    except OSError as e:
        return f"cannot use {path}: {e}"
    finally:
        auth_log.setLevel(level)
    return None


def _split_gs(path: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` → ``("bucket", "a/b")``."""
    if not path.startswith("gs://"):
        raise ValueError(f"unsupported storage path {path!r}: use a local path or gs://bucket/prefix")
    bucket, _, key = path[len("gs://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {path!r}")
    return bucket, key


@contextlib.contextmanager
def _gcs_errors(path: str):
    """Storage API errors as the OSError subclasses local files raise."""
    try:
        from google.api_core import exceptions as gexc
    except ImportError as e:
        raise OSError(GCS_NEEDS) from e
    try:
        yield
    except gexc.NotFound as e:
        raise FileNotFoundError(f"{path}: {e.message}") from e
    except gexc.Forbidden as e:
        raise PermissionError(f"{path}: {e.message}") from e
    except gexc.GoogleAPIError as e:
        raise OSError(f"{path}: {e}") from e


def _blob(path: str):
    bucket, key = _split_gs(path)
    if not key:
        raise ValueError(f"{path!r} names a bucket, not an object")
    return _gcs_client().bucket(bucket).blob(key)


def _gcs_list(root: str):
    """Every object under the folder ``root`` (a prefix ending at a ``/``)."""
    bucket, key = _split_gs(root)
    prefix = key.rstrip("/") + "/" if key.strip("/") else ""
    return _gcs_client().list_blobs(bucket, prefix=prefix)


def _gcs_committed(root: str, suffix: str):
    base = root.rstrip("/")
    with _gcs_errors(root):
        for b in _gcs_list(root):
            path = f"gs://{b.bucket.name}/{b.name}"
            rel = path[len(base) + 1:]
            if path.endswith(suffix) and not any(p.startswith((".", "_")) for p in rel.split("/")):
                yield path, b


def _lock_folder_for_reading(folder: str) -> int:
    """:func:`_lock_folder_shared`, taken through the gate (the parent folder, locked shared until
    then) that a compaction closes while it waits to swap a folder: see
    :class:`akhbar.transforms.compact._FolderLock`."""
    gate = os.open(os.path.dirname(folder) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(gate, fcntl.LOCK_SH)
        return _lock_folder_shared(folder)
    finally:
        os.close(gate)


def _lock_folder_shared(folder: str) -> int:
    """An open descriptor of ``folder`` holding a shared lock; retried if the folder was swapped
    (by a compaction) between opening and locking it, so the lock is on the live folder."""
    while True:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if os.fstat(fd).st_ino == os.stat(folder).st_ino:
            return fd
        os.close(fd)


def write_atomic(path: str, data: bytes, before_commit: Callable[[], None] | None = None,
                 commit_within_s: float | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file.

    ``before_commit`` is called just before the file becomes visible (locally: written and
    flushed, not yet renamed; on ``gs://``: before the upload); if it raises, nothing is visible
    and no temporary file is left. ``commit_within_s`` bounds how long a ``gs://`` upload goes on
    retrying after that check (see :class:`akhbar.transforms.outputlock.Fence`)."""
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
                if before_commit is not None:
                    before_commit()
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        finally:
            if folder_fd is not None:
                os.close(folder_fd)
        return
    # An object becomes visible only when its upload completes: written under its final name.
    with _gcs_errors(path):
        from google.cloud.storage.retry import DEFAULT_RETRY

        if before_commit is not None:
            before_commit()
        # Retrying is safe: the same bytes under the same name.
        retry = DEFAULT_RETRY if commit_within_s is None else DEFAULT_RETRY.with_timeout(commit_within_s)
        _blob(path).upload_from_string(data, content_type="application/octet-stream", retry=retry)


def delete(path: str) -> None:
    if is_local(path):
        os.unlink(_local(path))
    else:
        with _gcs_errors(path):
            _blob(path).delete()


def rename(path: str, new_path: str) -> None:
    """Give a file (locally also a folder) a new name in the same tree; on gs:// a copy, then a delete."""
    if is_local(path):
        os.replace(_local(path), _local(new_path))
        return
    write_atomic(new_path, read_bytes(path))
    delete(path)


def read_bytes(path: str) -> bytes:
    if is_local(path):
        with open(_local(path), "rb") as f:
            return f.read()
    with _gcs_errors(path):
        return _blob(path).download_as_bytes()


def exists(path: str) -> bool:
    if is_local(path):
        return os.path.exists(_local(path))
    with _gcs_errors(path):
        return _blob(path).exists()


def _committed_name(name: str, suffix: str) -> bool:
    """A committed data file's name: hidden (temporary) and ``_``-prefixed names are not."""
    return name.endswith(suffix) and not name.startswith((".", "_"))


def _local_identity(st: os.stat_result) -> tuple:
    """What :func:`snapshot` calls a local file's identity: it changes when the file is replaced."""
    return st.st_ino, st.st_size, st.st_mtime_ns


def relative(root: str, path: str) -> str:
    """``path`` (as :func:`list_files` or :func:`map_committed` give it) under ``root``, with ``/``."""
    return path[len(_local(root)):].lstrip("/\\").replace("\\", "/")


def list_files(root: str, suffix: str = ".parquet") -> list[str]:
    """Committed data files under ``root`` (hidden and ``_``-prefixed names skipped), sorted."""
    if is_local(root):
        root = _local(root)
        out = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            out.extend(os.path.join(folder, f) for f in files if _committed_name(f, suffix))
        return sorted(out)
    return sorted(path for path, _ in _gcs_committed(root, suffix))


# Free text gets no min/max statistics: no reader can skip a file by the smallest and largest body
# or title, and each value (up to 4 KB) is stored twice per column, in the page header and the
# footer: about a third of a small streaming file.
NO_STATISTICS = frozenset({"title", "body", "evidence", "credit", "dateline", "message", "detail"})


def table_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_SIZE,
                   use_dictionary=["source_id", "language", "schema_version", "published_source",
                                   "encoding", "declared_language", "run_id", "stage", "reason"],
                   write_statistics=[c for c in table.column_names if c not in NO_STATISTICS])
    return sink.getvalue()


class UnreadableFile(ValueError):
    """A committed data file that is not readable Parquet (truncated, overwritten, not Parquet at all)."""


def read_table(path: str, columns: list[str] | None = None) -> pa.Table:
    """The table in ``path``; :class:`UnreadableFile`, naming the file, if it is not Parquet
    (storage errors stay ``OSError``)."""
    try:
        # one file: ParquetFile, without the dataset layer of pq.read_table (0.7 ms less a file),
        # which also names a missing column, where ParquetFile would leave it out without a word
        with pq.ParquetFile(_local(path) if is_local(path) else io.BytesIO(read_bytes(path))) as f:
            missing = set(columns or ()).difference(f.schema_arrow.names)
            if missing:
                raise UnreadableFile(f"{path} is not a readable Parquet file (no column {', '.join(sorted(missing))})")
            return f.read(columns=columns)
    except pa.ArrowException as e:
        if isinstance(e, OSError):
            raise
        raise UnreadableFile(f"{path} is not a readable Parquet file ({e})") from e


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


# Reads of many small files (the dedup state, the dead letters) from Cloud Storage wait on one
# round trip each (tens of ms); this many at once. Local files are read one after the other.
GCS_READ_THREADS = 16


def map_files(fn: Callable[[str], T], paths: Iterable[str]) -> Iterator[T]:
    """``fn(path)`` for each of ``paths``, in their order; on ``gs://``, ``GCS_READ_THREADS`` at once
    (an exception of one call is raised when its turn comes)."""
    paths = list(paths)
    if len(paths) < 2 or is_local(paths[0]):
        yield from map(fn, paths)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(GCS_READ_THREADS, len(paths)), thread_name_prefix="akhbar-read") as pool:
        futures = [pool.submit(fn, path) for path in paths]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:  # the caller stopped early (or one call failed): drop what has not started
                future.cancel()


_GONE = object()


def map_committed(fn: Callable[[str, tuple], T], root: str, suffix: str = ".parquet") -> Iterator[tuple[str, T]]:
    """``(path, fn(path, identity))`` for every committed file under ``root`` (the identity as in
    :func:`snapshot`), in path order, reading every row of those files exactly once.

    Locally each folder is listed and its files read under the folder's shared lock: the lock a
    writer holds while it commits a file and a compaction (:mod:`akhbar.transforms.compact`) takes
    exclusively to swap the folder. No swap can fall inside the read, so what is read of each
    folder is one state of it whatever compactions run meanwhile (a compaction waits for the lock,
    and skips the partition this time if it waits too long). A file that ``fn`` finds gone was
    removed otherwise (an old compaction placeholder, of no rows, or by hand) and is left out.
    On ``gs://``, never compacted, ``GCS_READ_THREADS`` files at once, as :func:`map_files`."""
    def call(path: str, ident: tuple):
        try:
            return fn(path, ident)
        except FileNotFoundError:
            return _GONE

    if not is_local(root):
        files = snapshot(root, suffix)
        paths = sorted(files)
        for path, result in zip(paths, map_files(lambda p: call(p, files[p]), paths)):
            if result is not _GONE:
                yield path, result
        return
    folders = []
    for folder, dirs, _ in os.walk(_local(root)):
        # the files are listed again under the lock: a listing taken here may be of a folder
        # that a compaction is deleting, after swapping it out
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        folders.append(folder)
    for folder in sorted(folders):
        yield from _map_folder(call, folder, suffix)


def _map_folder(call: Callable[[str, tuple], object], folder: str, suffix: str) -> list[tuple[str, object]]:
    try:
        fd = _lock_folder_for_reading(folder) if fcntl is not None else None
    except (FileNotFoundError, NotADirectoryError):  # removed since it was listed
        return []
    try:
        out = []
        for name in sorted(os.listdir(folder)):
            if not _committed_name(name, suffix):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            result = call(path, _local_identity(st))
            if result is not _GONE:
                out.append((path, result))
        return out
    finally:
        if fd is not None:
            os.close(fd)


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
    """Identity of every committed file under ``root``: it changes when a file is replaced under
    the same name (a compaction's placeholder, a rewrite), so what was read of a file can be
    reused only while its identity holds. A consistent read of a local folder that compactions
    may swap: :func:`map_committed`."""
    if is_local(root):
        out = {}
        for path in list_files(root, suffix):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            out[path] = _local_identity(st)
        return out
    # A generation changes whenever an object is rewritten, even with the same size and second.
    return {path: (b.size, b.generation, b.updated) for path, b in _gcs_committed(root, suffix)}
