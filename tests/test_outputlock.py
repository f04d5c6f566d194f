"""The output lock: one writer per output at a time. Locally a flock that dies with its process;
on gs:// a lease object, against the Cloud Storage emulator on 127.0.0.1."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http import HTTPStatus

import pyarrow.dataset as ds
import pytest
import yaml

from akhbar.pipelines.cli import main
from akhbar.sample.site import build_site, expected, sources_yaml
from akhbar.transforms import outputlock
from akhbar.transforms.outputlock import OutputLock, OutputLocked
from tests.servers import Reply, RouteServer, gcs_emulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
       "GCE_METADATA_ROOT": "127.0.0.1:9"}


def holder_process(output: str, run_id: str, **lease) -> subprocess.Popen:
    """Another process that takes the lock of ``output``, says so on stdout and waits to be killed."""
    script = ("import sys, time\n"
              "from akhbar.transforms.outputlock import OutputLock\n"
              f"OutputLock({output!r}, {run_id!r}, **{lease!r}).acquire()\n"
              "print('held', flush=True)\n"
              "time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**ENV, **os.environ},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    line = proc.stdout.readline()
    assert line.strip() == b"held", proc.stderr.read().decode()
    return proc


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- local ------------------------------------------------------------------------------------

def test_a_second_writer_is_refused_and_told_who_holds_the_output(tmp_path):
    out = str(tmp_path / "out")
    with OutputLock(out, "20261124T000000Z-aaaa", "run") as held:
        with pytest.raises(OutputLocked) as refused:
            OutputLock(out, "20261124T000001Z-bbbb").acquire()
        message = str(refused.value)
        for part in (out, "run 20261124T000000Z-aaaa", f"pid {os.getpid()}", socket.gethostname(),
                     held.holder()["since"], "nothing was run"):
            assert part in message
        assert refused.value.holder["run_id"] == "20261124T000000Z-aaaa"
    with OutputLock(out, "20261124T000001Z-bbbb"):  # released at the end of the first
        pass


def test_a_killed_holder_never_blocks_the_next_run(tmp_path):
    out = str(tmp_path / "out")
    proc = holder_process(out, "killed-run")
    try:
        with pytest.raises(OutputLocked, match=f"killed-run \\(pid {proc.pid} "):
            OutputLock(out, "next-run").acquire()
    finally:
        kill(proc)  # SIGKILL: no clean-up code runs
    with OutputLock(out, "next-run") as lock:  # the kernel dropped the dead process's lock
        with open(lock.path, encoding="utf-8") as f:
            assert json.loads(f.read())["run_id"] == "next-run"


@pytest.fixture()
def gated_site():
    """The sample site, whose article pages wait until ``gate`` is set: a run holds on, mid-fetch,
    for as long as the test needs."""
    gate = threading.Event()
    with RouteServer() as srv:
        for path, resp in build_site(srv.base_url).items():
            headers = {"Content-Type": resp.content_type, **resp.headers} if resp.content_type else dict(resp.headers)
            reply = Reply(resp.status, resp.body, headers)
            if path.endswith(".html"):
                srv.route(path, lambda _request, reply=reply: gate.wait(60) and reply)
            else:
                srv.route(path, reply)
        yield srv, gate
        gate.set()


def test_two_runs_at_once_one_writes_and_the_other_is_refused(gated_site, tmp_path):
    srv, gate = gated_site
    doc = yaml.safe_load(sources_yaml(srv.base_url))
    for s in doc["sources"]:
        s["min_interval"] = 0
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"

    def start():
        return subprocess.Popen([sys.executable, "-m", "akhbar", "run", "--sources", str(sources), "--output",
                                 str(out), "--allow-private-hosts", "--host-interval", "0", "--quiet"],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    first = start()
    try:
        lock_file = out / "_state" / "output.lock"
        deadline = time.monotonic() + 60
        while not (lock_file.exists() and lock_file.read_text()) or not srv.hits:
            assert first.poll() is None, first.communicate()[1].decode()  # it ended: why
            assert time.monotonic() < deadline, "the first run never took the output's lock"
            time.sleep(0.05)
        holder = json.loads(lock_file.read_text())
        second = start()  # while the first is running (its article pages are held back)
        _, err = second.communicate(timeout=120)
        assert first.poll() is None  # the two really overlapped
        assert second.returncode == 2, err.decode()
        err = err.decode()
        assert f"{out} is being written by run {holder['run_id']} (pid {first.pid} on" in err
        assert "Traceback" not in err
    except BaseException:
        first.kill()
        first.wait()
        raise
    finally:
        gate.set()
    assert first.wait(timeout=120) == 0, first.stderr.read().decode()

    truth = expected(srv.base_url)
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["article_id", "url"]).to_pylist()
    assert sorted(r["url"] for r in rows) == sorted(truth["articles"])
    assert len({r["article_id"] for r in rows}) == len(rows) == 15
    dead = ds.dataset(str(out / "dead_letter"), partitioning="hive").to_table(columns=["url", "reason"]).to_pylist()
    assert sorted((r["url"], r["reason"]) for r in dead) == sorted(truth["dead_letters"].items())
    assert lock_file.read_text() == ""  # released: nobody named as holder


def sample_sources(srv, tmp_path):
    doc = yaml.safe_load(sources_yaml(srv.base_url))
    for s in doc["sources"]:
        s["min_interval"] = 0
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return sources


def run_losing_the_lock_midway(gated, sources, output, take_over, capsys):
    """``akhbar run`` into ``output`` while, once its article pages are being fetched (nothing
    committed yet), ``take_over()`` gives the output's lock to another run; then the pages are
    let through. Returns (exit code, stderr, what take_over returned)."""
    srv, gate = gated
    taken = []

    def thief():
        deadline = time.monotonic() + 60
        while not any(path.endswith(".html") for path, _ in srv.hits) and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            taken.append(take_over())
        finally:
            gate.set()

    t = threading.Thread(target=thief)
    t.start()
    try:
        code = main(["run", "--sources", str(sources), "--output", output, "--allow-private-hosts",
                     "--host-interval", "0"])
    finally:
        gate.set()
        t.join()
    assert taken, "the lock was never taken over"
    return code, capsys.readouterr().err, taken[0]


def test_a_run_whose_lock_file_is_replaced_stops_before_committing(gated_site, tmp_path, capsys):
    """Locally the flock cannot be taken from a live run, but its file can be deleted by hand and
    re-created by another run: the first run then commits nothing more."""
    srv, _ = gated_site
    out = tmp_path / "out"

    def take_over():
        os.unlink(out / "_state" / "output.lock")
        return OutputLock(str(out), "taker-run").acquire()

    code, err, taker = run_losing_the_lock_midway(gated_site, sample_sources(srv, tmp_path), str(out), take_over,
                                                  capsys)
    try:
        assert code == 1, err
        assert "no longer holds the output lock" in err and "taker-run" in err and "Traceback" not in err
        assert not [p for p in out.rglob("*.parquet")]  # no article, no dead letter committed
        assert not [p for p in out.rglob("*.inprogress")]  # and nothing half-written left behind
        assert not (out / "_state" / "feeds.json").exists() and not (out / "_reports").exists()
        assert json.loads((out / "_state" / "output.lock").read_text())["run_id"] == "taker-run"
    finally:
        taker.release()


def committed_files(out) -> list[str]:
    return sorted(str(p.relative_to(out)) for dataset in ("articles", "dead_letter")
                  for p in (out / dataset).rglob("*.parquet"))


def test_streaming_cycles_stop_once_their_lock_file_is_taken(tmp_path):
    from akhbar.pipelines import streaming as ps
    from akhbar.pipelines.batch import RunConfig, new_run_id
    from akhbar.sample.growing import GrowingSite
    from akhbar.schemas.sources import validate_text

    out = tmp_path / "out"
    taken, added = [], []

    def after_cycle(line):
        if not taken:  # after the first cycle another run takes the lock file's place; a new article appears
            os.unlink(out / "_state" / "output.lock")
            taken.append(OutputLock(str(out), "taker-run").acquire())
            added.append(site.add())
            taken.append(committed_files(out))
            taken.append((out / "_state" / "streaming.json").read_bytes())

    with GrowingSite(sources=1) as site:
        site.add()
        sources, _ = validate_text(site.sources_yaml(poll_interval=1))
        cfg = RunConfig(sources=tuple(sources), output=str(out), run_id=new_run_id(), allow_private_hosts=True)
        stopped = None
        try:
            ps.run_cycles(cfg, [], ps.StreamSettings(duration_s=15, compact_every_s=None), log=after_cycle)
        except Exception as e:  # noqa: BLE001 - checked below
            stopped = e
        finally:
            if taken:
                taken[0].release()
    assert taken and added
    _, files_then, schedule_then = taken
    assert files_then and committed_files(out) == files_then  # nothing committed since
    assert (out / "_state" / "streaming.json").read_bytes() == schedule_then
    urls = ds.dataset(str(out / "articles"), partitioning="hive").to_table(columns=["url"]).column("url").to_pylist()
    assert added[0] not in urls
    assert isinstance(stopped, outputlock.LeaseLost) and "taker-run" in str(stopped)


def test_every_kind_of_writer_is_refused_while_the_output_is_held(sample_site, tmp_path, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    out = str(tmp_path / "out")
    common = ["--sources", str(sources), "--allow-private-hosts", "--host-interval", "0"]
    assert main(["run", "--output", out, *common]) == 0
    capsys.readouterr()
    with OutputLock(out, "the-holder"):
        with pytest.raises(SystemExit) as batch:
            main(["run", "--output", out, *common])
        assert batch.value.code == 2
        assert "is being written by run the-holder" in capsys.readouterr().err
        with pytest.raises(SystemExit) as replay:
            main(["replay", out, "--sources", str(sources), "--allow-private-hosts"])
        assert replay.value.code == 2
        assert main(["run", "--output", out, "--mode", "streaming", "--duration", "1", *common]) == 2
        err = capsys.readouterr().err
        assert "is being written by run the-holder" in err and "Traceback" not in err
    assert len(ds.dataset(os.path.join(out, "articles"), partitioning="hive").files) > 0
    assert main(["run", "--output", out, "--mode", "streaming", "--duration", "1", *common]) == 0


# --- gs:// ------------------------------------------------------------------------------------

storage = pytest.importorskip("google.cloud.storage")
emulator_server = pytest.importorskip("gcp_storage_emulator.server")
BUCKET = "akhbar-lock"


@contextlib.contextmanager
def generation_preconditions():
    """Make the emulator answer ``ifGenerationMatch`` as Cloud Storage does.

    gcp-storage-emulator ignores the parameter (it overwrites and deletes whatever the generation),
    so the lease's create-only-if-absent and replace-only-what-was-read could not be seen failing.
    While the block runs, an upload or delete with ``ifGenerationMatch`` goes through only if the
    object's generation is that value (``0``: no object), otherwise the answer is 412; the check and
    the write happen under one lock, atomically, as on the real service.
    """
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    guard = threading.Lock()

    def name_of(request):
        if "object_id" in (request.params or {}):
            return request.params["object_id"]
        if "name" in request.query:
            return request.query["name"][0]
        return request.data["meta"]["name"]  # a multipart upload names the object in its metadata

    def guarded(handler):
        def checked(request, response, storage, *args, **kwargs):
            want = request.query.get("ifGenerationMatch")
            if not want:
                return handler(request, response, storage, *args, **kwargs)
            with guard:
                try:
                    have = str(storage.get_file_obj(request.params["bucket_name"], name_of(request))["generation"])
                except NotFound:
                    have = "0"
                if have != want[0]:
                    response.status = HTTPStatus.PRECONDITION_FAILED
                    response.json({"error": {"code": 412, "message": "At least one of the pre-conditions you "
                                             "specified did not hold."}})
                    return None
                return handler(request, response, storage, *args, **kwargs)
        return checked

    originals = {name: getattr(objects, name) for name in ("insert", "delete")}
    replaced = []
    for _, handlers in emulator_server.HANDLERS:
        for method, handler in handlers.items():
            for name, original in originals.items():
                if handler is original:
                    handlers[method] = guarded(original)
                    replaced.append((handlers, method, original))
    for name, original in originals.items():
        setattr(objects, name, guarded(original))
    try:
        yield
    finally:
        for handlers, method, original in replaced:
            handlers[method] = original
        for name, original in originals.items():
            setattr(objects, name, original)


@pytest.fixture(scope="module")
def gcs():
    with gcs_emulator(BUCKET) as client, generation_preconditions():
        yield client


def lease_of(gcs, output):
    blob = gcs.bucket(BUCKET).get_blob(output[len(f"gs://{BUCKET}/"):] + "/_state/output.lock")
    if blob is None:
        return None
    generation = blob.generation
    return json.loads(blob.download_as_bytes()), generation


def seize(gcs, output, run_id, lease_s=300.0):
    """Another run takes the lease over, as one that found it lapsed does (a rewrite conditioned on
    the generation it read); returns a function that releases it. The holder is left running, as
    a machine that was paused longer than the lease and then resumes would be."""
    key = output[len(f"gs://{BUCKET}/"):] + "/_state/output.lock"
    current = gcs.bucket(BUCKET).get_blob(key)
    doc = {"output": output, "what": "run", "run_id": run_id, "host": "elsewhere", "pid": 4242,
           "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "token": f"token-of-{run_id}",
           "expires": (datetime.now(timezone.utc) + timedelta(seconds=300)).isoformat(timespec="seconds"),
           "lease_s": lease_s}
    blob = gcs.bucket(BUCKET).blob(key)
    blob.upload_from_string(json.dumps(doc), content_type="application/json",
                            if_generation_match=current.generation if current else 0)
    return lambda: gcs.bucket(BUCKET).blob(key).delete(if_generation_match=blob.generation)


def test_the_emulator_answers_preconditions_like_cloud_storage(gcs):
    from google.api_core.exceptions import PreconditionFailed

    blob = gcs.bucket(BUCKET).blob("pre/x")
    blob.upload_from_string(b"one", if_generation_match=0)
    first = blob.generation
    with pytest.raises(PreconditionFailed):
        gcs.bucket(BUCKET).blob("pre/x").upload_from_string(b"two", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        gcs.bucket(BUCKET).blob("pre/x").delete(if_generation_match=first + 1)
    gcs.bucket(BUCKET).blob("pre/x").upload_from_string(b"three", if_generation_match=first)
    assert gcs.bucket(BUCKET).blob("pre/x").download_as_bytes() == b"three"


def test_lease_taken_renewed_refused_and_released(gcs):
    output = f"gs://{BUCKET}/lease/out"
    with OutputLock(output, "holder-run", lease_s=1.5, renew_s=0.3) as held:
        holder, generation = lease_of(gcs, output)
        assert holder["run_id"] == "holder-run" and holder["pid"] == os.getpid()
        assert holder["host"] == socket.gethostname() and holder["what"] == "run"
        time.sleep(2.5)  # longer than the lease: only renewals keep it
        renewed, later = lease_of(gcs, output)
        assert later != generation and renewed["expires"] > holder["expires"]
        with pytest.raises(OutputLocked) as refused:
            OutputLock(output, "second-run").acquire()
        message = str(refused.value)
        assert "is being written by run holder-run" in message and f"pid {os.getpid()}" in message
        assert "expires at" in message and "delete the object by hand" in message
        assert held.lost is None
    assert lease_of(gcs, output) is None  # released


def test_only_one_of_two_runs_racing_for_a_free_lease_gets_it(gcs):
    output = f"gs://{BUCKET}/race/out"
    def take(name, start, won, lost):
        lock = OutputLock(output, name)
        start.wait()
        try:
            lock.acquire()
            won.append(lock)
        except OutputLocked:
            lost.append(name)

    for attempt in range(5):
        start = threading.Barrier(2)
        won, lost = [], []
        threads = [threading.Thread(target=take, args=(f"racer-{attempt}-{k}", start, won, lost)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == 1
        assert lease_of(gcs, output)[0]["run_id"] == won[0].run_id
        won[0].release()


def test_a_dead_holders_lease_is_taken_over_once_expired(gcs):
    output = f"gs://{BUCKET}/dead/out"
    proc = holder_process(output, "killed-run", lease_s=3.0, renew_s=0.5)
    kill(proc)
    holder, _ = lease_of(gcs, output)
    assert holder["pid"] == proc.pid
    with pytest.raises(OutputLocked, match="killed-run"):
        OutputLock(output, "early-run").acquire()  # not expired yet
    deadline = time.monotonic() + 30
    while True:
        try:
            lock = OutputLock(output, "next-run").acquire()
            break
        except OutputLocked:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    try:
        assert datetime.now(timezone.utc) > datetime.fromisoformat(holder["expires"])
        assert lease_of(gcs, output)[0]["run_id"] == "next-run"
    finally:
        lock.release()


def test_a_run_whose_clock_is_ahead_cannot_take_a_live_lease(gcs):
    """Expiry is judged by Cloud Storage's clock: a run on a machine ten minutes ahead finds the
    lease of a live holder unexpired (by its own clock the holder's ``expires`` is long past), and
    leaves no probe object behind."""
    output = f"gs://{BUCKET}/skew/out"
    held = OutputLock(output, "holder-run", lease_s=60, renew_s=0.5).acquire()
    try:
        ahead = datetime.now(timezone.utc) + timedelta(minutes=10)
        assert ahead > datetime.fromisoformat(lease_of(gcs, output)[0]["expires"])
        with pytest.raises(OutputLocked, match="holder-run"):
            OutputLock(output, "hasty-run", clock=lambda: ahead).acquire()
        assert lease_of(gcs, output)[0]["run_id"] == "holder-run" and held.lost is None
        assert [b.name for b in gcs.list_blobs(BUCKET, prefix="skew/out/_state/")] == ["skew/out/_state/output.lock"]
    finally:
        held.release()
    # a lease whose stated duration makes no sense is judged with the finder's own (5 minutes)
    for nonsense in (-5, 0, "soon", None):
        release = seize(gcs, output, "odd-run", lease_s=nonsense)
        try:
            with pytest.raises(OutputLocked, match="odd-run"):
                OutputLock(output, "next-run").acquire()
        finally:
            release()


def test_a_holder_that_lost_its_lease_neither_renews_nor_deletes_it(gcs):
    output = f"gs://{BUCKET}/lost/out"
    slow = OutputLock(output, "stalled-run", lease_s=60, renew_s=0.2).acquire()
    release_taker = seize(gcs, output, "taker-run")
    try:
        deadline = time.monotonic() + 10
        while slow.lost is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "taker-run" in slow.lost
        slow.release()
        assert lease_of(gcs, output)[0]["run_id"] == "taker-run"
    finally:
        release_taker()
    assert lease_of(gcs, output) is None


def test_a_fence_refuses_commits_once_another_run_took_the_lease_over(gcs):
    from akhbar.schemas.arrow import DEAD_LETTER_SCHEMA, dead_letter_row
    from akhbar.schemas.records import DeadLetter
    from akhbar.transforms.sink import write_partition

    output = f"gs://{BUCKET}/fenced/out"
    folder = f"{output}/dead_letter/dt=2026-11-24"
    row = dead_letter_row(DeadLetter(url="https://a.example/1", source_id="a", stage="fetch", reason="http_404",
                                     message="m", time=datetime(2026, 11, 24, tzinfo=timezone.utc)))
    slow = OutputLock(output, "stalled-run", lease_s=60, renew_s=0.2).acquire()
    fence = slow.fence()
    assert fence.problem() is None
    (first, _), = write_partition(folder, [row], DEAD_LETTER_SCHEMA, "before", "url", fence=fence)
    release_taker = seize(gcs, output, "taker-run")
    try:
        with pytest.raises(outputlock.LeaseLost, match="taken over by run taker-run") as lost:
            write_partition(folder, [row], DEAD_LETTER_SCHEMA, "after", "url", fence=fence)
        assert "stalled-run no longer holds the output lock" in str(lost.value)
        names = [b.name for b in gcs.list_blobs(BUCKET, prefix="fenced/out/dead_letter/")]
        assert names == [first[len(f"gs://{BUCKET}/"):]]  # only the file committed while it held the lease
        with pytest.raises(outputlock.LeaseLost, match="taker-run"):
            slow.check()
    finally:
        slow.release()
        release_taker()


def test_a_lease_that_is_not_renewed_stops_commits_before_another_run_can_take_it(gcs):
    output = f"gs://{BUCKET}/lapsing/out"
    lock = OutputLock(output, "paused-run", lease_s=3.0, renew_s=1.0).acquire()
    fence = lock.fence()
    try:
        lock._stop.set()  # its renewals stop (a network cut, a paused machine) while its workers go on
        lock._renewer.join()
        expires = datetime.fromisoformat(lease_of(gcs, output)[0]["expires"])
        deadline = time.monotonic() + 10
        while fence.problem() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused_at = datetime.now(timezone.utc)
        with pytest.raises(outputlock.LeaseLost, match="runs out at"):
            fence.check("a file")
        # commits stopped a renewal interval before the lease could be taken: nobody else has it yet
        assert refused_at < expires
        with pytest.raises(OutputLocked):
            OutputLock(output, "next-run").acquire()
    finally:
        lock._renewer = None
        lock._release_gcs()


def test_a_gs_run_that_loses_its_lease_midway_commits_nothing_more(gcs, gated_site, tmp_path, capsys):
    srv, _ = gated_site
    output = f"gs://{BUCKET}/taken/out"

    def take_over():
        return seize(gcs, output, "taker-run")

    code, err, release_taker = run_losing_the_lock_midway(gated_site, sample_sources(srv, tmp_path), output,
                                                          take_over, capsys)
    try:
        assert code == 1, err
        assert "no longer holds the output lock" in err and "taken over by run taker-run" in err
        assert "Traceback" not in err
        # nothing of the run is visible: no article, no dead letter, no feed state, no run report
        assert [b.name for b in gcs.list_blobs(BUCKET, prefix="taken/out/")] == ["taken/out/_state/output.lock"]
        assert lease_of(gcs, output)[0]["run_id"] == "taker-run"  # the lease is left to its holder
    finally:
        release_taker()


def test_a_gs_run_is_refused_while_the_lease_is_held_and_releases_its_own(gcs, sample_site, tmp_path, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    output = f"gs://{BUCKET}/cli/out"
    argv = ["run", "--sources", str(sources), "--output", output, "--allow-private-hosts", "--host-interval", "0"]
    with OutputLock(output, "other-run"):
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
        assert f"{output} is being written by run other-run" in capsys.readouterr().err
    assert main(argv) == 0
    assert "wrote 15 article rows" in capsys.readouterr().out
    assert lease_of(gcs, output) is None
    assert outputlock.lock_path(output) == f"{output}/_state/output.lock"
