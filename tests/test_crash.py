"""Crash safety: `akhbar run` killed with SIGKILL at several points, then re-run, ends with the
same dataset as one clean run; readers never see a broken or partial file meanwhile."""
import os
import signal
import subprocess
import sys
import threading
import time

import apache_beam as beam
import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from apache_beam.testing.test_pipeline import TestPipeline

from akhbar.sample.site import build_site, sources_yaml
from akhbar.transforms import store
from akhbar.transforms.sink import WriteArticles
from tests.servers import Reply, RouteServer
from tests.test_output import article

PAGE_DELAY = 0.05  # seconds per article page, so that a run spends a while fetching
COLUMNS = ["article_id", "url", "source_id", "title", "body", "content_hash", "duplicate_of", "topics", "language"]


@pytest.fixture(scope="module")
def slow_site():
    with RouteServer() as srv:
        for path, resp in build_site(srv.base_url).items():
            headers = {"Content-Type": resp.content_type, **resp.headers} if resp.content_type else dict(resp.headers)
            srv.route(path, Reply(resp.status, resp.body, headers, delay=PAGE_DELAY if path.endswith(".html") else 0))
        yield srv


@pytest.fixture(scope="module")
def sources(slow_site, tmp_path_factory):
    doc = yaml.safe_load(sources_yaml(slow_site.base_url))
    for s in doc["sources"]:
        s["min_interval"] = 0
    path = tmp_path_factory.mktemp("crash") / "sources.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def start(sources, out):
    # its own temporary folder: Beam's temp folder of a killed run is never removed
    tmp = out.parent / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "NO_GCE_CHECK": "true", "TMPDIR": str(tmp)}
    return subprocess.Popen([sys.executable, "-m", "akhbar", "run", "--sources", str(sources), "--output", str(out),
                             "--allow-private-hosts", "--quiet"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_when(proc, condition, timeout=60.0) -> str:
    """SIGKILL the run's whole process group as soon as ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "killed"
        if proc.poll() is not None:
            return "finished first"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("condition never held")


def names_under(out):
    return {os.path.join(d, f) for sub in ("articles", "dead_letter") for d, _, fs in os.walk(out / sub) for f in fs}


def read_all(out):
    root = out / "articles"
    if not root.exists():
        return []
    data = ds.dataset(str(root), partitioning="hive")
    return data.to_table(columns=COLUMNS).to_pylist() if data.files else []  # no file yet: no schema either


def test_killed_runs_then_a_rerun_equal_one_clean_run(slow_site, sources, tmp_path):
    started = time.monotonic()
    clean = tmp_path / "clean"
    proc = start(sources, clean)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    expected = {r["article_id"]: r for r in read_all(clean)}
    assert len(expected) == 15

    out = tmp_path / "crashed"
    stop = threading.Event()
    errors, reads = [], [0]

    def reader():
        con = duckdb.connect()
        while not stop.is_set():
            try:
                for path in store.list_files(str(out / "articles")) + store.list_files(str(out / "dead_letter")):
                    pq.read_table(path)  # every listed file is whole
                rows = read_all(out)
                ids = [r["article_id"] for r in rows]
                if len(ids) != len(set(ids)):
                    errors.append(f"a row twice: {len(ids)} rows, {len(set(ids))} ids")
                if rows:
                    con.execute(f"SELECT count(*) FROM read_parquet('{out}/articles/**/*.parquet', "
                                "hive_partitioning=true)").fetchone()
                reads[0] += 1
                time.sleep(0.01)  # leave the CPU to the runs
            except Exception as e:  # noqa: BLE001 - the point of the test: count every failure
                errors.append(f"{type(e).__name__}: {e}")

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    outcomes = []
    phases = [("clean", time.monotonic() - started)]
    try:
        # 1. while pages are being fetched
        hits = len(slow_site.hits)
        outcomes.append(kill_when(start(sources, out), lambda: sum(
            1 for p, _ in slow_site.hits[hits:] if p.endswith(".html")) >= 3))
        phases.append(("kill during fetch", time.monotonic() - started))
        # 2. as soon as the first data file of the run is committed
        outcomes.append(kill_when(start(sources, out), lambda: bool(store.list_files(str(out / "articles")))))
        phases.append(("kill at first commit", time.monotonic() - started))
        # 3. as soon as the run starts writing anything (a temporary file or a committed one)
        before = names_under(out)
        outcomes.append(kill_when(start(sources, out), lambda: bool(names_under(out) - before)))
        phases.append(("kill at first write", time.monotonic() - started))
        # 4. to completion
        proc = start(sources, out)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    finally:
        stop.set()
        t.join()
    rows = read_all(out)
    got = {r["article_id"]: r for r in rows}
    assert len(rows) == len(got), "an article was written twice"
    assert got.keys() == expected.keys()
    assert got == expected  # same URL, body, hashes, near-duplicate links and topics, row for row
    assert not errors, errors[:5]
    assert reads[0] > 0
    phases.append(("final run", time.monotonic() - started))
    print(f"kill outcomes {outcomes}, {reads[0]} reads, phases ended at {[(n, round(t, 1)) for n, t in phases]}")


def test_a_writer_killed_mid_file_leaves_only_an_ignored_hidden_file(tmp_path):
    """SIGKILL a process while write_atomic is writing a large file."""
    target = tmp_path / "articles" / "dt=2026-11-24" / "source=ex" / "part-big.parquet"
    script = (f"from akhbar.transforms import store\n"
              f"store.write_atomic({str(target)!r}, b'PAR1' + b'x' * (160 << 20))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    assert kill_when(proc, lambda: any(store.is_temporary(n) for n in os.listdir(target.parent))
                     if target.parent.exists() else False) == "killed"
    (leftover,) = os.listdir(target.parent)
    assert store.is_temporary(leftover) and not target.exists()
    assert store.list_files(str(tmp_path / "articles")) == []
    assert not ds.dataset(str(tmp_path / "articles"), partitioning="hive").files
    # the next writer into the tree removes it once it is over an hour old, not before
    assert store.remove_stale_temporaries(str(tmp_path)) == []
    assert store.remove_stale_temporaries(str(tmp_path), now=time.time() + 3601) == [str(target.parent / leftover)]


def test_a_run_removes_stale_temporaries_and_keeps_young_ones(tmp_path):
    out = tmp_path / "out"
    elsewhere = out / "articles" / "dt=2020-01-01" / "source=old"
    elsewhere.mkdir(parents=True)
    stale, young = elsewhere / ".part-a.parquet.1.inprogress", elsewhere / ".part-b.parquet.2.inprogress"
    stale.write_bytes(b"PAR1 half")
    young.write_bytes(b"PAR1 half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    with TestPipeline() as p:
        p | beam.Create([article(1)]) | WriteArticles(str(out), "r1")
    assert not stale.exists() and young.exists()
    assert len(store.list_files(str(out / "articles"))) == 1
