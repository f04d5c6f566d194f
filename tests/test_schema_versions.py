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

MAJOR, MINOR = map(int, SCHEMA_VERSION.split("."))
NEXT = f"{MAJOR}.{MINOR + 1}"
# what the next minor version would look like: one nullable column appended, everything else unchanged
SCHEMA_11 = ARTICLES_SCHEMA.append(pa.field("word_count", pa.int32(), nullable=True)).with_metadata(
    {b"akhbar.schema": b"articles", b"akhbar.schema_version": NEXT.encode()})
HIVE = ds.partitioning(pa.schema([("dt", pa.string()), ("source", pa.string())]), flavor="hive")


def folder(out, dt, source="ex"):
    return os.path.join(out, "articles", f"dt={dt}", f"source={source}")


def write_both(out):
    old = [article(i) for i in range(3)]
    write_partition(folder(out, "2026-11-24"), [article_row(a) for a in old], ARTICLES_SCHEMA, "r10", "article_id")
    write_partition(folder(out, "2026-11-25"), [article_row(article(3))], ARTICLES_SCHEMA, "r10", "article_id")
    new = [dict(article_row(article(i)), schema_version=NEXT, word_count=40 + i) for i in range(4, 7)]
    write_partition(folder(out, "2026-11-25"), new, SCHEMA_11, "r11", "article_id")
    write_partition(folder(out, "2026-11-24"), [dict(article_row(article(7)), schema_version=NEXT,
                                                               word_count=47)], SCHEMA_11, "r11", "article_id")


def expected_rows():
    return {f"{i:032x}": ((SCHEMA_VERSION, None) if i < 4 else (NEXT, 40 + i)) for i in range(8)}


def test_old_and_new_minor_versions_read_together(tmp_path):
    out = str(tmp_path)
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
        assert schema.field("word_count").nullable and schema.metadata[b"akhbar.schema_version"] == NEXT.encode()


def test_the_versioning_rules_are_in_the_data_dictionary():
    doc = data_dictionary_markdown()
    assert "## Schema versions" in doc and "union_by_name=true" in doc and "schema=" in doc


ADDED_IN_1_1 = {"credit", "dateline"}


def test_files_written_with_schema_1_0_read_with_the_current_schema(tmp_path):
    """Real history: 1.1 appended `credit` and `dateline`; 1.0 files must read with the current schema."""
    assert (MAJOR, MINOR) >= (1, 1) and ADDED_IN_1_1 <= set(ARTICLES_SCHEMA.names)
    schema_10 = pa.schema([f for f in ARTICLES_SCHEMA if f.name not in ADDED_IN_1_1],
                          metadata={b"akhbar.schema": b"articles", b"akhbar.schema_version": b"1.0"})
    out = str(tmp_path)
    old = [{k: v for k, v in article_row(article(i)).items() if k not in ADDED_IN_1_1} | {"schema_version": "1.0"}
           for i in range(3)]
    write_partition(folder(out, "2026-11-24"), old, schema_10, "r10", "article_id")
    write_partition(folder(out, "2026-11-24"), [article_row(article(5))], ARTICLES_SCHEMA, "rnow", "article_id")
    full = ARTICLES_SCHEMA
    for f in HIVE.schema:
        full = full.append(f)
    rows = ds.dataset(os.path.join(out, "articles"), schema=full, partitioning=HIVE).to_table().to_pylist()
    assert sorted(r["schema_version"] for r in rows) == ["1.0", "1.0", "1.0", SCHEMA_VERSION]
    assert all(r["credit"] is None and r["dateline"] is None for r in rows if r["schema_version"] == "1.0")
    n = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{out}/articles/**/*.parquet', hive_partitioning=true, union_by_name=true) "
        "WHERE dateline IS NULL").fetchone()[0]
    assert n == 4
