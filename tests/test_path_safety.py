"""Partition values come from data; none of them can put a file outside the output root."""
import os
from datetime import date, datetime, timezone

import apache_beam as beam
import pyarrow.dataset as ds
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from akhbar.transforms import store
from akhbar.transforms.sink import WriteArticles, WriteDeadLetters
from tests.test_output import article

HOSTILE_SOURCES = ["../x", "..", ".", "a/b", "/etc", "/tmp/evil", "a\\b", "", "A", "x y", "x\x00y",
                   "x/../../y", "ünï", "-/..", None, 7]
HOSTILE_DATES = ["2026-02-30", "../2026-01-01", "2026-1-1", "2026-01-01/..", "/2026-01-01", "", "20260101", None]


def all_files(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("value", HOSTILE_SOURCES)
def test_hostile_source_ids_are_refused(tmp_path, value):
    with pytest.raises(store.UnsafePartition):
        store.partition_path(str(tmp_path), [("dt", "2026-11-24"), ("source", value)])


@pytest.mark.parametrize("value", HOSTILE_DATES)
def test_hostile_dates_are_refused(tmp_path, value):
    with pytest.raises(store.UnsafePartition):
        store.partition_path(str(tmp_path), [("dt", value)])


def test_good_values_and_unknown_keys(tmp_path):
    assert store.partition_path(str(tmp_path), [("dt", date(2026, 11, 24)), ("source", "bbc_arabic-2")]) == \
        str(tmp_path / "dt=2026-11-24" / "source=bbc_arabic-2")
    assert store.partition_path("gs://b/p/articles", [("dt", "2026-11-24")]) == "gs://b/p/articles/dt=2026-11-24"
    with pytest.raises(store.UnsafePartition):
        store.partition_path(str(tmp_path), [("../dt", "2026-11-24")])
    with pytest.raises(store.UnsafePartition):
        store.partition_path(str(tmp_path), [])
    for spec in ("dt=2026-11-24/source=../x", "dt=2026-11-24/../../x", "source", "dt=2026-13-01", "/"):
        with pytest.raises(store.UnsafePartition):
            store.parse_partition(spec)
    assert store.parse_partition("dt=2026-11-24/source=x") == [("dt", "2026-11-24"), ("source", "x")]


def test_a_symlinked_partition_that_leaves_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "dt=2026-11-24").mkdir(parents=True)
    os.symlink(outside, root / "dt=2026-11-24" / "source=x")
    with pytest.raises(store.UnsafePartition):
        store.partition_path(str(root), [("dt", "2026-11-24"), ("source", "x")])


def test_the_article_writer_turns_hostile_values_into_dead_letters(tmp_path):
    out = tmp_path / "out"
    good = article(1)
    hostile = [article(10 + i, source_id=v, url=f"https://ex.com/h{i}") for i, v in enumerate(HOSTILE_SOURCES)
               if isinstance(v, str)]
    with TestPipeline() as p:
        p | beam.Create([good, *hostile]) | WriteArticles(str(out), "r1")
    files = all_files(tmp_path)
    assert all(f.startswith(str(out) + os.sep) for f in files), files
    assert all_files(out / "articles") == store.list_files(str(out / "articles"))
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()
    assert [r["article_id"] for r in rows] == [good.article_id]
    dead = ds.dataset(str(out / "dead_letter"), partitioning="hive").to_table().to_pylist()
    assert sorted(d["url"] for d in dead) == sorted(a.url for a in hostile)
    assert {(d["stage"], d["reason"]) for d in dead} == {("write", "bad_partition")}
    assert not os.path.exists(tmp_path / "x") and not os.path.exists("/tmp/evil")


def test_dead_letter_writer_refuses_rather_than_strays(tmp_path):
    from akhbar.schemas.records import DeadLetter

    d = DeadLetter(url="u", source_id="../../x", stage="fetch", reason="http_404", message="m",
                   time=datetime(2026, 11, 24, tzinfo=timezone.utc))
    with TestPipeline() as p:  # the source id is only a column here; the partition is the date
        p | beam.Create([d]) | WriteDeadLetters(str(tmp_path / "o"), "r1")
    (only,) = all_files(tmp_path)
    assert os.path.relpath(only, tmp_path).startswith("o/dead_letter/dt=2026-11-24/part-r1-")
