"""gs:// output end to end: the real CLI run against a Cloud Storage emulator on 127.0.0.1.

The emulator (gcp-storage-emulator, in memory) runs in this process; the store talks to it through
google-cloud-storage with anonymous credentials because STORAGE_EMULATOR_HOST is set.
"""
import io
import json

import pyarrow.parquet as pq
import pytest

storage = pytest.importorskip("google.cloud.storage")
emulator_server = pytest.importorskip("gcp_storage_emulator.server")

from akhbar.pipelines.cli import main  # noqa: E402
from akhbar.sample.site import expected, sources_yaml  # noqa: E402
from akhbar.transforms import store  # noqa: E402
from tests.servers import gcs_emulator  # noqa: E402

BUCKET = "akhbar-test"


@pytest.fixture(scope="module")
def gcs():
    """A client on a fresh in-memory emulator, with STORAGE_EMULATOR_HOST pointing at it."""
    with gcs_emulator(BUCKET) as client:
        yield client


def _objects(client, prefix):
    return {b.name: b for b in client.list_blobs(BUCKET, prefix=prefix)}


def _rows(client, names):
    out = []
    for name in names:
        data = client.bucket(BUCKET).blob(name).download_as_bytes()
        out.extend(pq.read_table(io.BytesIO(data)).to_pylist())
    return out


def test_store_primitives_on_gcs(gcs):
    root = f"gs://{BUCKET}/prims"
    store.write_atomic(f"{root}/a/x.parquet", b"one")
    store.write_atomic(f"{root}/a/_hidden/y.parquet", b"skip")
    store.write_atomic(f"{root}/a/.z.parquet", b"skip")
    store.write_atomic(f"{root}/a/notes.txt", b"skip")
    store.write_atomic(f"{root}-sibling/x.parquet", b"not under root")
    assert store.read_bytes(f"{root}/a/x.parquet") == b"one"
    assert store.exists(f"{root}/a/x.parquet") and not store.exists(f"{root}/a/nope.parquet")
    assert store.list_files(root) == [f"{root}/a/x.parquet"]
    before = store.snapshot(root)
    store.write_atomic(f"{root}/a/x.parquet", b"two")  # same size, rewritten
    assert store.read_bytes(f"{root}/a/x.parquet") == b"two"
    assert store.snapshot(root).keys() == before.keys() and store.snapshot(root) != before
    store.delete(f"{root}/a/x.parquet")
    assert store.list_files(root) == [] and store.snapshot(root) == {}
    with pytest.raises(FileNotFoundError):
        store.read_bytes(f"{root}/a/x.parquet")
    with pytest.raises(FileNotFoundError):
        store.delete(f"{root}/a/x.parquet")
    assert store.remove_stale_temporaries(root) == []


def test_run_to_gcs_twice(gcs, sample_site, tmp_path, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    output = f"gs://{BUCKET}/runs/out"
    argv = ["run", "--sources", str(sources), "--output", output, "--allow-private-hosts", "--host-interval", "0"]
    truth = expected(sample_site.base_url)

    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 15 article rows" in printed

    objects = _objects(gcs, "runs/out/")
    articles = sorted(n for n in objects if n.startswith("runs/out/articles/"))
    assert articles and all(n.endswith(".parquet") and "/dt=" in n and "/source=" in n for n in articles)
    rows = _rows(gcs, articles)
    urls = [r["url"] for r in rows]
    assert sorted(urls) == sorted(truth["articles"]) and len(set(urls)) == len(urls)
    assert sum(1 for r in rows if r["duplicate_of"]) == 1
    dead = _rows(gcs, sorted(n for n in objects if n.startswith("runs/out/dead_letter/")))
    assert sorted((r["url"], r["reason"]) for r in dead) == sorted(truth["dead_letters"].items())

    feeds = json.loads(gcs.bucket(BUCKET).blob("runs/out/_state/feeds.json").download_as_bytes())
    assert {f["feed_url"] for f in feeds["feeds"]} and all(f["source_id"] for f in feeds["feeds"])
    (report,) = [n for n in objects if n.startswith("runs/out/_reports/")]
    summary = json.loads(gcs.bucket(BUCKET).blob(report).download_as_bytes())
    assert summary["articles_written"] == 15 and summary["dead_letters"] == 4

    # pyarrow reads the hive dataset straight from a file object too
    one = pq.read_table(io.BytesIO(gcs.bucket(BUCKET).blob(articles[0]).download_as_bytes()))
    assert one.num_rows >= 1 and "article_id" in one.column_names

    # the seen log summarises the files a run found (the first found none: it has no segment)
    assert not [n for n in objects if n.startswith("runs/out/_state/seen/")]

    # the second run writes nothing new; no temporary or in-progress names anywhere
    assert main(argv) == 0
    assert "wrote 0 article rows" in capsys.readouterr().out
    after = _objects(gcs, "runs/out/")
    assert sorted(n for n in after if n.startswith("runs/out/articles/")) == articles
    assert len(_rows(gcs, articles)) == 15
    names = [n.rsplit("/", 1)[-1] for n in after]
    assert not [n for n in names if n.startswith(".") or store.TEMP_SUFFIX in n or "tmp" in n.lower()]
    assert len([n for n in after if n.startswith("runs/out/_reports/")]) == 2
    (segment,) = [n for n in after if n.startswith("runs/out/_state/seen/")]
    summarised = pq.read_table(io.BytesIO(gcs.bucket(BUCKET).blob(segment).download_as_bytes()))
    assert sorted(set(summarised.column("file").to_pylist())) == sorted(n[len("runs/out/articles/"):] for n in articles)

    # feed health and replay read the gs:// output through the same store
    assert main(["sources", "health", output]) == 0
    assert sample_site.base_url in capsys.readouterr().out
    assert main(["replay", output, "--sources", str(sources), "--allow-private-hosts", "--reason", "http_404"]) == 0
    printed = capsys.readouterr().out
    assert "1 URLs from 1 matching dead letters" in printed and "wrote 0 article rows" in printed
    dead_before = _rows(gcs, [n for n in after if n.startswith("runs/out/dead_letter/")])
    dead_after = _rows(gcs, list(_objects(gcs, "runs/out/dead_letter/")))
    assert len(dead_after) == len(dead_before) + 1  # the still-missing page failed again
    def n404(rows):
        return sum(r["reason"] == "http_404" for r in rows)

    assert n404(dead_after) == n404(dead_before) + 1

    assert main(argv) == 0  # a run that finds every file summarised writes no new segment
    capsys.readouterr()
    assert [n for n in _objects(gcs, "runs/out/") if n.startswith("runs/out/_state/seen/")] == [segment]

    # the HTML report of the gs:// output: the near-duplicate's first-seen copy is read again from
    # its partition for the cluster listing
    (later, first), = truth["near_duplicates"]
    by_url = {r["url"]: r for r in rows}
    assert main(["report", output, "--out", str(tmp_path / "r.html")]) == 0
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<table id="cluster-1">' in text and f'href="{first}"' in text and f'href="{later}"' in text
    assert by_url[first]["title"] in text and "(not stored)" not in text


def test_gs_output_needs_a_bucket(tmp_path, sample_site, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    assert main(["run", "--sources", str(sources), "--output", "gs:///x", "--allow-private-hosts"]) == 2
    assert "bucket" in capsys.readouterr().err


def test_reads_of_many_objects_at_once_keep_their_connections(gcs, caplog):
    """store.map_files reads GCS_READ_THREADS objects at once; the client's connection pool has room
    for them, so no connection is thrown away after its request (urllib3 warns when it does)."""
    import logging

    root = f"gs://{BUCKET}/many"
    paths = [f"{root}/f{i:02d}.parquet" for i in range(3 * store.GCS_READ_THREADS)]
    for i, path in enumerate(paths):
        store.write_atomic(path, f"object {i}".encode())
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        got = list(store.map_files(store.read_bytes, paths))
    assert got == [f"object {i}".encode() for i in range(len(paths))]
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_committed_objects_are_read_several_at_once(gcs, monkeypatch):
    """store.map_committed on gs://: the calls overlap (four meet at a barrier, which one call at a
    time never could), results keep the path order with each object's identity, and an object
    gone before its turn is left out."""
    import threading

    root = f"gs://{BUCKET}/committed"
    names = [f"dt=1/source=s/{n}.parquet" for n in "abcdefgh"]
    for name in names:
        store.write_atomic(f"{root}/{name}", name.encode())
    idents = store.snapshot(root)
    monkeypatch.setattr(store, "GCS_READ_THREADS", 4)
    meet = threading.Barrier(4, timeout=30)

    def read(path, ident):
        meet.wait()
        if path.endswith("c.parquet"):
            raise FileNotFoundError(path)
        return ident, store.read_bytes(path)

    got = list(store.map_committed(read, root))
    assert [p for p, _ in got] == [f"{root}/{n}" for n in names if not n.endswith("c.parquet")]
    assert all(ident == idents[p] and data == p[len(root) + 1:].encode() for p, (ident, data) in got)
