"""Schema versioning: files of a minor version bump (a nullable column appended) and files of the
current version read as one dataset with pyarrow and DuckDB, and compact together."""
import os

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from akhbar.schemas.arrow import ARTICLES_SCHEMA, SCHEMA_VERSION, article_row, data_dictionary_markdown
from akhbar.transforms.compact import compact
from akhbar.transforms.sink import write_partition
from tests.test_output import article

# what a 1.1 would look like: one nullable column appended, everything else unchanged
SCHEMA_11 = ARTICLES_SCHEMA.append(pa.field("word_count", pa.int32(), nullable=True)).with_metadata(
    {b"akhbar.schema": b"articles", b"akhbar.schema_version": b"1.1"})
HIVE = ds.partitioning(pa.schema([("dt", pa.string()), ("source", pa.string())]), flavor="hive")


def folder(out, dt, source="ex"):
    return os.path.join(out, "articles", f"dt={dt}", f"source={source}")


def write_both(out):
    old = [article(i) for i in range(3)]
    write_partition(folder(out, "2026-11-24"), [article_row(a) for a in old], ARTICLES_SCHEMA, "r10", "article_id")
    write_partition(folder(out, "2026-11-25"), [article_row(article(3))], ARTICLES_SCHEMA, "r10", "article_id")
    new = [dict(article_row(article(i)), schema_version="1.1", word_count=40 + i) for i in range(4, 7)]
    write_partition(folder(out, "2026-11-25"), new, SCHEMA_11, "r11", "article_id")
    write_partition(folder(out, "2026-11-24"), [dict(article_row(article(7)), schema_version="1.1",
                                                               word_count=47)], SCHEMA_11, "r11", "article_id")


def expected_rows():
    return {f"{i:032x}": (("1.0", None) if i < 4 else ("1.1", 40 + i)) for i in range(8)}


def test_old_and_new_minor_versions_read_together(tmp_path):
    out = str(tmp_path)
    assert SCHEMA_VERSION == "1.0"
    write_both(out)
    full = SCHEMA_11
    for f in HIVE.schema:
        full = full.append(f)
    t = ds.dataset(os.path.join(out, "articles"), schema=full, partitioning=HIVE).to_table()
    assert t.schema.names[-3:] == ["word_count", "dt", "source"]
    got = {r["article_id"]: (r["schema_version"], r["word_count"]) for r in t.to_pylist()}
    assert got == expected_rows() and t.num_rows == 8

    rows = duckdb.connect().execute(
        f"SELECT article_id, schema_version, word_count, dt FROM read_parquet('{out}/articles/**/*.parquet', "
        "hive_partitioning=true, union_by_name=true)").fetchall()
    assert {a: (v, w) for a, v, w, _ in rows} == expected_rows() and len(rows) == 8


def test_compaction_keeps_the_newer_columns(tmp_path):
    out = str(tmp_path)
    write_both(out)
    reports = compact(out, target_rows=1000)
    assert sorted(r.status for r in reports) == ["compacted", "compacted"]
    rows = duckdb.connect().execute(
        f"SELECT article_id, schema_version, word_count FROM read_parquet('{out}/articles/**/*.parquet', "
        "hive_partitioning=true, union_by_name=true)").fetchall()
    assert {a: (v, w) for a, v, w in rows} == expected_rows() and len(rows) == 8
    merged = [r.outputs[0] for r in reports]
    for r, name in zip(reports, merged):
        schema = ds.dataset(os.path.join(out, "articles", *r.partition.split("/"), name)).schema
        assert schema.field("word_count").nullable and schema.metadata[b"akhbar.schema_version"] == b"1.1"


def test_the_versioning_rules_are_in_the_data_dictionary():
    doc = data_dictionary_markdown()
    assert "## Schema versions" in doc and "union_by_name=true" in doc and "schema=" in doc
