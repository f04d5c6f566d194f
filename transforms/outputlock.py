"""One writer per output at a time: the output lock.

A run decides what to fetch and write from the index of committed files it reads when it starts
(:func:`akhbar.transforms.state.load_prior`). Two runs writing into one output at once would each
write every article the other had not committed yet, so the same URL would be stored twice. So
every process that writes rows into an output holds the output's lock while it writes: a batch run
and ``akhbar replay`` (:func:`akhbar.pipelines.batch.run`), local streaming mode for all its
cycles, and the launcher of the streaming graph while it waits for the job
(:mod:`akhbar.pipelines.streaming`). A second writer is refused at once with
:class:`OutputLocked`, which names the output and the holder (host, pid, run id, since when).
Compaction does not take the lock: it moves committed rows and is built to run beside writers
and readers (see :mod:`akhbar.transforms.compact`). A writer that takes a local output also
creates its ``articles/`` and ``dead_letter/`` folders (:func:`make_folders`), so that readers
find the datasets, empty, before the first row is written.

**Local output.** ``OUTPUT/_state/output.lock``, locked with ``flock`` through a descriptor kept
open for the whole run. The kernel drops the lock when the process ends, however it ends
(``SIGKILL`` included), so a killed run never leaves a lock behind. The file's text says who holds
it; it only means something while the file is locked.

**``gs://`` output.** The object ``OUTPUT/_state/output.lock`` is a lease: JSON with the holder and
an expiry ``lease_s`` seconds ahead. It is created only if absent (``if_generation_match=0``),
renewed by a thread every ``renew_s`` seconds (a rewrite conditioned on the generation this process
wrote last) and deleted at the end (again only that generation). A holder that died stops renewing;
once its expiry has passed, the next run replaces the object, conditioned on the generation it
read, so of two runs trying at once only one takes the lease over. Whether it has lapsed is judged
by Cloud Storage's clock alone: the lock object's last update against the creation time of a probe
object the finding run writes next to it (``output.lock.clock-…``, deleted at once), so a machine
whose clock is minutes ahead cannot take over a live lease. To clear the lock of a dead run before
it expires, delete the object (``gcloud storage rm gs://BUCKET/PREFIX/_state/output.lock``).

**A holder that lost its lock commits nothing more.** A lease can be lost while its holder still
runs: its renewals failed for ``lease_s`` (a network cut, a paused machine) and another run took
it over, or the object was deleted by hand. Every commit of a writer (each data file, the feed
state, the streaming schedule) first asks its :class:`Fence`, which reads the lock itself: the
commit goes ahead only if the lock still names this holder and, on ``gs://``, its expiry is
more than ``margin_s`` (``renew_s``) away, so that no other run can take it over before the
commit is complete. Otherwise :class:`LeaseLost` is raised before anything is renamed or
uploaded. A fence is a small picklable value, so Beam workers in other processes or on other
machines check it themselves. Files committed earlier stay: each is whole, and the run holding
the lock now read them before it wrote anything, exactly as after a killed run. The process
holding the lock then ends the run with :class:`LeaseLost` (exit 1), without its run report,
and cancels a job that runs elsewhere. Locally the ``flock`` cannot be taken from a live
process; the fence still notices a lock file that was deleted and re-created by another run.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from akhbar.transforms import store

LOCK_FILE = ("_state", "output.lock")
DATASETS = ("articles", "dead_letter")
DEFAULT_LEASE_S = 300.0
DEFAULT_RENEW_S = 60.0
HOLDER_WAIT_S = 0.5  # a lock just taken: how long to wait for its holder to write who it is

log = logging.getLogger(__name__)


def lock_path(output: str) -> str:
    return store.join(output, *LOCK_FILE)


class OutputLocked(RuntimeError):
    """Another process holds the output's lock: this run must not write there now."""

    def __init__(self, output: str, holder: dict | None, path: str):
        self.output, self.holder, self.path = output, holder, path
        super().__init__(describe_refusal(output, holder, path))


class LeaseLost(RuntimeError):
    """This writer no longer holds the output's lock (taken over, deleted, or about to lapse): it
    must commit nothing more there."""


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "a process that has not said who it is yet"
    return (f"{holder.get('what', 'run')} {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, since {holder.get('since', '?')})")


def describe_refusal(output: str, holder: dict | None, path: str) -> str:
    who = describe_holder(holder)
    text = f"{output} is being written by {who}; one writer per output at a time, nothing was run"
    if store.is_local(output):
        return f"{text}. The lock ({path}) is released when that process ends."
    expires = (holder or {}).get("expires")
    return (f"{text}. Its lease ({path}) is renewed while it runs{f' and expires at {expires}' if expires else ''}; "
            f"if that run is dead, the next run after that takes it over, or delete the object by hand.")


def _parse(raw: bytes) -> dict | None:
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


@dataclass(frozen=True)
class Fence:
    """What a writer of ``output`` checks right before each commit: that the lock it was started
    under is still held by ``token``. Picklable, so Beam workers anywhere check it themselves."""

    output: str
    token: str
    run_id: str
    margin_s: float

    def problem(self, now: datetime | None = None) -> str | None:
        """Why a commit now would not be covered by the lock; None when it would be."""
        path = lock_path(self.output)
        if store.is_local(self.output):
            try:
                with open(store._local(path), "rb") as f:
                    holder = _parse(f.read(1 << 16))
            except FileNotFoundError:
                return f"the lock file {path} was removed"
            if not holder or holder.get("token") != self.token:
                return f"the lock file {path} now names {describe_holder(holder)}"
            return None
        from google.api_core.exceptions import NotFound, PreconditionFailed

        bucket, key = store._split_gs(path)
        with store._gcs_errors(path):
            for _ in range(3):
                blob = store._gcs_client().bucket(bucket).get_blob(key)
                if blob is None:
                    return f"the lease {path} was deleted"
                try:
                    holder = _parse(blob.download_as_bytes(if_generation_match=blob.generation))
                    break
                except (NotFound, PreconditionFailed):  # renewed or replaced between the two requests
                    continue
            else:
                return f"the lease {path} keeps changing under this run"
        if not holder or holder.get("token") != self.token:
            return f"the lease {path} was taken over by {describe_holder(holder)}"
        try:
            expires = datetime.fromisoformat(holder["expires"])
        except (KeyError, TypeError, ValueError):
            return f"the lease {path} has no readable expiry"
        now = now or datetime.now(timezone.utc)
        if expires - now <= timedelta(seconds=self.margin_s):
            return (f"the lease {path} runs out at {_iso(expires)} (it has not been renewed in time), so another "
                    f"run may take it over before a commit started now is complete")
        return None

    def check(self, what: str = "") -> None:
        """Raise :class:`LeaseLost` unless a commit (of ``what``) is covered by the lock now."""
        problem = self.problem()
        if problem:
            raise LeaseLost(lost_message(self.output, self.run_id, problem, what))


def commit_guard(fence: Fence | None, what: str) -> dict:
    """Keyword arguments of :func:`akhbar.transforms.store.write_atomic` that make one commit
    (of ``what``) wait on ``fence``; none without a fence."""
    if fence is None:
        return {}
    return {"before_commit": functools.partial(fence.check, what), "commit_within_s": fence.margin_s}


def lost_message(output: str, run_id: str, problem: str, what: str = "") -> str:
    before = f" before committing {what}" if what else ""
    return (f"{run_id} no longer holds the output lock of {output}: {problem}. It stopped{before}: files it "
            f"committed while it held the lock are whole and stay, nothing after that was committed (no feed "
            f"state, no run report); the run holding the lock now, or the next one, goes on from the committed files")


class OutputLock:
    """The lock of ``output`` for the run ``run_id``; ``what`` (run, replay, streaming …) names
    the kind of writer in the message another run gets. Use as a context manager."""

    def __init__(self, output: str, run_id: str, what: str = "run", *, lease_s: float = DEFAULT_LEASE_S,
                 renew_s: float = DEFAULT_RENEW_S, clock: Callable[[], datetime] | None = None):
        if not 0 < renew_s < lease_s:
            raise ValueError("renew_s must be positive and shorter than lease_s")
        self.output, self.run_id, self.what = output, run_id, what
        self.path = lock_path(output)
        self.lease_s, self.renew_s = lease_s, renew_s
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.token = uuid.uuid4().hex  # tells this holder's lease from any other's
        self.since: datetime | None = None
        self.lost: str | None = None  # gs://: why the lease was lost while held (another run took it)
        self._on_lost: list[Callable[[], None]] = []
        self._fd: int | None = None
        self._generation: int | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def holder(self) -> dict:
        doc = {"output": self.output, "what": self.what, "run_id": self.run_id, "host": socket.gethostname(),
               "pid": os.getpid(), "since": _iso(self.since), "token": self.token}
        if not store.is_local(self.output):
            doc["expires"] = _iso(self.clock() + timedelta(seconds=self.lease_s))  # for people and fences
            doc["lease_s"] = self.lease_s  # how long after the object's last update it lapses
        return doc

    def acquire(self) -> OutputLock:
        self.since = self.clock()
        if store.is_local(self.output):
            self._acquire_local()
        else:
            self._acquire_gcs()
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)  # an unlocked file says nobody holds it
            finally:
                os.close(fd)  # drops the lock
        if self._renewer is not None:
            self._stop.set()
            self._renewer.join()
            self._renewer = None
            self._release_gcs()

    def fence(self) -> Fence | None:
        """What this holder's writers check before each commit (None: nothing is locked here)."""
        if store.is_local(self.output) and self._fd is None:
            return None  # no file locks on this platform
        return Fence(self.output, self.token, self.run_id, self.renew_s)

    def check(self, what: str = "") -> None:
        """Raise :class:`LeaseLost` if this holder lost the lock (see :class:`Fence`)."""
        problem = self.lost
        if problem is None and self._fd is None and self._renewer is None:
            return  # not held (released, or no locks on this platform)
        fence = self.fence()
        problem = problem or (fence.problem() if fence else None)
        if problem:
            raise LeaseLost(lost_message(self.output, self.run_id, problem, what))

    def when_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the renewing thread) once the lease is found lost: e.g. to
        cancel a job that runs elsewhere and would otherwise go on failing its commits."""
        self._on_lost.append(callback)
        if self.lost:
            callback()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # --- local: flock ---------------------------------------------------------------------------

    def _acquire_local(self) -> None:
        if store.fcntl is None:  # not POSIX
            log.warning("no file locks on this platform: %s is not locked against other runs", self.output)
            return
        path = store._local(self.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            store.fcntl.flock(fd, store.fcntl.LOCK_EX | store.fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputLocked(self.output, holder, path) from None
        except BaseException:
            os.close(fd)
            raise
        data = json.dumps(self.holder()).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd = fd

    # --- gs://: a lease ---------------------------------------------------------------------------

    def _put(self, if_generation_match: int) -> None:
        bucket, key = store._split_gs(self.path)
        blob = store._gcs_client().bucket(bucket).blob(key)
        # with a generation precondition the client retries transient errors itself
        blob.upload_from_string(json.dumps(self.holder()), content_type="application/json",
                                if_generation_match=if_generation_match)
        self._generation = blob.generation

    def _current(self) -> tuple[int | None, datetime | None, dict | None]:
        """The lock object's (generation, last update, holder); (None, None, None) if there is none."""
        from google.api_core.exceptions import NotFound, PreconditionFailed

        bucket, key = store._split_gs(self.path)
        blob = store._gcs_client().bucket(bucket).get_blob(key)
        if blob is None:
            return None, None, None
        generation, updated = blob.generation, blob.updated  # a download may reset them from its headers
        try:
            return generation, updated, _parse(blob.download_as_bytes(if_generation_match=generation))
        except (NotFound, PreconditionFailed):  # replaced or deleted between the two requests
            return None, None, None

    def _expired(self, updated: datetime | None, holder: dict | None) -> bool:
        """Whether the lease lapsed: more than its ``lease_s`` since the object's last update, both
        times by Cloud Storage's clock (the holder's own ``expires`` is by its clock, which may be
        minutes off this machine's)."""
        if updated is None:
            return False
        try:
            lease_s = float((holder or {}).get("lease_s", self.lease_s))
        except (TypeError, ValueError):
            lease_s = self.lease_s
        if not (math.isfinite(lease_s) and lease_s > 0):  # not written by akhbar: judged with this run's lease
            lease_s = self.lease_s
        return self._storage_now() - updated > timedelta(seconds=lease_s)

    def _storage_now(self) -> datetime:
        """Cloud Storage's time now: the creation time of a probe object written for it."""
        from google.api_core.exceptions import GoogleAPIError

        bucket, key = store._split_gs(self.path)
        probe = store._gcs_client().bucket(bucket).blob(f"{key}.clock-{uuid.uuid4().hex}")
        probe.upload_from_string(b"", if_generation_match=0)
        try:
            return probe.time_created
        finally:
            try:
                probe.delete(if_generation_match=probe.generation)
            except GoogleAPIError as e:  # a stray probe is harmless: readers skip _state/
                log.warning("%s: could not delete %s: %s", self.output, probe.name, e)

    def _acquire_gcs(self) -> None:
        from google.api_core.exceptions import PreconditionFailed

        holder = None
        with store._gcs_errors(self.path):
            for _ in range(5):
                try:
                    self._put(if_generation_match=0)  # only if there is no lock object
                    break
                except PreconditionFailed:
                    pass
                generation, updated, holder = self._current()
                if generation is None:  # released meanwhile
                    continue
                if holder and holder.get("token") == self.token:  # our own create, its answer lost
                    self._generation = generation
                    break
                if not self._expired(updated, holder):
                    raise OutputLocked(self.output, holder, self.path)
                try:
                    self._put(if_generation_match=generation)  # only the expired lease we read
                except PreconditionFailed:
                    continue  # renewed, released or taken by another run meanwhile: look again
                log.warning("%s: took over the expired lock of %s", self.output, holder)
                break
            else:
                raise OutputLocked(self.output, holder, self.path)
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="akhbar-output-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        from google.api_core.exceptions import GoogleAPIError, PreconditionFailed

        while not self._stop.wait(self.renew_s):
            try:
                self._put(if_generation_match=self._generation)
            except PreconditionFailed:
                try:
                    generation, _, holder = self._current()
                except (GoogleAPIError, OSError):
                    generation, holder = None, None
                if holder and holder.get("token") == self.token:  # our renewal went through
                    self._generation = generation
                    continue
                self.lost = (f"the lease was taken over by {describe_holder(holder)}" if holder
                             else "the lease was deleted")
                log.error("%s: this run lost the output lock (%s); it commits nothing more",
                          self.output, self.lost)
                for callback in self._on_lost:
                    try:
                        callback()
                    except Exception:  # noqa: BLE001 - the writers' fences stop the commits anyway
                        log.exception("%s: after losing the output lock", self.output)
                return
            except (GoogleAPIError, OSError) as e:  # transient: the lease outlives a few failed renewals
                log.warning("%s: renewing the output lock failed: %s", self.output, e)

    def _release_gcs(self) -> None:
        from google.api_core.exceptions import GoogleAPIError

        if self.lost:
            return
        bucket, key = store._split_gs(self.path)
        try:
            store._gcs_client().bucket(bucket).blob(key).delete(if_generation_match=self._generation)
        except GoogleAPIError as e:  # not ours any more, or gone: the lease expires by itself
            log.warning("%s: releasing the output lock: %s", self.output, e)


def _read_holder(fd: int) -> dict | None:
    """Who holds a local lock, from its file (written just after it was taken: waited for briefly)."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        holder = _parse(os.pread(fd, 1 << 16, 0))
        if holder is not None or time.monotonic() > deadline:
            return holder
        time.sleep(0.02)


def make_folders(output: str) -> None:
    """``articles/`` and ``dead_letter/`` of a local output, so that readers find the datasets
    (empty) before the first row is written. Object stores have no folders: nothing to do."""
    if store.is_local(output):
        for dataset in DATASETS:
            os.makedirs(store.join(output, dataset), exist_ok=True)


@contextlib.contextmanager
def writing(output: str, run_id: str, what: str = "run", **lease) -> Iterator[OutputLock]:
    """Hold ``output``'s lock for the block, with its dataset folders made; raises
    :class:`OutputLocked` at once when another process holds it."""
    with OutputLock(output, run_id, what, **lease) as lock:
        make_folders(output)
        yield lock
