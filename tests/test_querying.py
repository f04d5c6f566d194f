"""docs/querying.md: every DuckDB, Polars and pandas example runs against a real run's output.

The bundled sample site is ingested once (a real Beam run on 127.0.0.1); the examples run
verbatim from a folder where ``out/`` is that output, and their results are compared with the
Parquet files read independently with pyarrow. The BigQuery blocks cannot run here: they are
checked for structure (statement kind, partition keys of the real layout, real column names).
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
from akhbar.pipelines.cli import main
from akhbar.schemas.arrow import ARTICLES_COLUMNS, DEAD_LETTER_COLUMNS

from akhbar.sample.site import expected, sources_yaml

DOC = Path(__file__).resolve().parent.parent / "docs" / "querying.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks() -> dict[str, tuple[str, str, str]]:
    """``id`` → (language, kind, code) of every fenced block that has an ``id=`` in its info string."""
    out = {}
    for lang, info, code in FENCE.findall(DOC.read_text(encoding="utf-8")):
        words = info.split()
        ids = [w.split("=", 1)[1] for w in words if w.startswith("id=")]
        if ids:
            assert ids[0] not in out, f"duplicate block id {ids[0]}"
            out[ids[0]] = (lang, words[0], code)
    return out


BLOCKS = blocks()


@pytest.fixture(scope="module")
def sample_out(sample_site, tmp_path_factory):
    """A folder holding ``out/``: the output of two real runs over the sample site (the second adds
    no article, only the broken feed's dead letter again), so the checks span runs."""
    d = tmp_path_factory.mktemp("querying")
    src = d / "sources.yaml"
    src.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    for _ in range(2):
        assert main(["run", "--sources", str(src), "--output", str(d / "out"), "--allow-private-hosts",
                     "--host-interval", "0", "--quiet"]) == 0
    return d, expected(sample_site.base_url)


@pytest.fixture()
def in_sample(sample_out, monkeypatch):
    d, truth = sample_out
    monkeypatch.chdir(d)
    return d, truth


def truth_rows(d):
    articles = ds.dataset(str(d / "out" / "articles"), partitioning="hive").to_table().to_pylist()
    dead = ds.dataset(str(d / "out" / "dead_letter"), partitioning="hive").to_table().to_pylist()
    return articles, dead


def utc_day(r) -> date:
    return (r["published_at"] or r["fetched_at"]).astimezone(timezone.utc).date()


def statements(code: str) -> list[str]:
    return [s.strip() for s in code.split(";\n") if s.strip().rstrip(";")]


def run_duckdb(con, block_id: str, replace: dict[str, str] | None = None) -> list[list[dict]]:
    """Run a block's statements; ``replace``: text of the block to change first (each must be there)."""
    lang, kind, code = BLOCKS[block_id]
    assert (lang, kind) == ("sql", "duckdb")
    for old, new in (replace or {}).items():
        assert old in code, (block_id, old)
        code = code.replace(old, new)
    results = []
    for stmt in statements(code):
        rel = con.sql(stmt)
        if stmt.upper().startswith(("SELECT", "WITH")):
            cols = rel.columns
            results.append([dict(zip(cols, row)) for row in rel.fetchall()])
    return results


def test_the_doc_has_the_promised_examples():
    kinds = Counter((lang, kind) for lang, kind, _ in BLOCKS.values())
    assert kinds[("sql", "duckdb")] >= 7 and kinds[("python", "run")] == 3 and kinds[("sql", "bigquery")] == 6
    for needle in ("import duckdb", "import polars", "import pandas"):
        assert any(needle in code for lang, _, code in BLOCKS.values() if lang == "python"), needle
    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/querying.md" in readme


def test_duckdb_sql_examples(in_sample):
    d, truth = in_sample
    articles, dead = truth_rows(d)
    assert len(articles) == 15
    con = duckdb.connect()
    # the queries must not depend on the session's time zone: use one far from UTC
    con.execute("SET TimeZone = 'Pacific/Kiritimati'")
    assert run_duckdb(con, "views") == []
    assert con.execute("SELECT count(*) FROM articles").fetchall() == [(15,)]

    (per_day,) = run_duckdb(con, "per-day")
    assert Counter({(r["day"], r["source"]): r["articles"] for r in per_day}) == Counter(
        (utc_day(r), r["source_id"]) for r in articles)

    (weekly,) = run_duckdb(con, "topic-share-week")
    want = Counter()
    for r in articles:
        week = utc_day(r) - timedelta(days=utc_day(r).weekday())
        want[(week, "articles")] += 1
        for t in r["topics"]:
            want[(week, t)] += 1
    got = Counter()
    for r in weekly:
        got[(r["week"], "articles")] += r["articles"]
        for t in ("nato", "ukraine"):
            if r[t]:
                got[(r["week"], t)] += r[t]
        assert r["nato_pct"] == round(100 * r["nato"] / r["articles"], 1)
    assert got == want

    (clusters,) = run_duckdb(con, "clusters")
    (later, first), = truth["near_duplicates"]
    by_url = {r["url"]: r for r in articles}
    assert clusters == [{"article_id": by_url[first]["article_id"], "first_source": by_url[first]["source_id"],
                         "title": by_url[first]["title"], "copies": 2,
                         "also_carried_by": [by_url[later]["source_id"]]}]

    (dangling,) = run_duckdb(con, "dangling-duplicate-of")
    assert dangling == []  # every duplicate_of names a stored article

    (evidence,) = run_duckdb(con, "evidence")
    want_ev = Counter(tuple(e.split(":", 1)) for r in articles for e in r["evidence"])
    assert {(r["topic"], r["term"]): r["articles"] for r in evidence} == want_ev and want_ev

    (dead_rows,) = run_duckdb(con, "dead-letters")
    assert {(r["stage"], r["reason"], r["source_id"]): r["items"] for r in dead_rows} == Counter(
        (r["stage"], r["reason"], r["source_id"]) for r in dead)
    assert {(r["stage"], r["reason"]) for r in dead_rows} == {
        (stage, reason) for stage, reason in (("fetch", "http_404"), ("fetch", "unsupported_content_type"),
                                              ("extract", "empty_body"), ("poll", "http_500"))}
    assert len({r["run_id"] for r in articles}) == 1 and len({r["run_id"] for r in dead}) == 2  # two runs

    (failing,) = run_duckdb(con, "failing-now")
    latest = {}
    for r in dead:  # the always-failing feed is a dead letter of both runs: its latest attempt only
        key = (r["url"], r["stage"])
        if key not in latest or r["time"] > latest[key]["time"]:
            latest[key] = r
    assert len(failing) == len(latest) < len(dead)
    assert {(r["url"], r["stage"], r["run_id"]) for r in failing} == {
        (r["url"], r["stage"], r["run_id"]) for r in latest.values()}

    (given,) = run_duckdb(con, "given-up")
    assert given == []  # no page of the sample failed in 3 runs (test_e2e runs this query where one did)

    (dups,) = run_duckdb(con, "no-duplicates")
    assert dups == [] and len({r["article_id"] for r in articles}) == len(articles)

    recent, globbed = run_duckdb(con, "one-partition")
    madina = [r for r in articles if r["source_id"] == "madina"]
    assert [(r["source"], r["articles"]) for r in recent] == [("madina", len(madina))] == [("madina", 5)]
    assert globbed == [{"articles": len(madina)}]


def run_python(block_id: str) -> dict:
    lang, kind, code = BLOCKS[block_id]
    assert (lang, kind) == ("python", "run")
    ns: dict = {"__name__": f"querying_{block_id}"}
    exec(compile(code, f"docs/querying.md:{block_id}", "exec"), ns)  # noqa: S102 - our own documentation
    return ns


def test_duckdb_python_example(in_sample, capsys):
    d, _ = in_sample
    articles, _ = truth_rows(d)
    ns = run_python("duckdb-python")
    want = Counter(r["source_id"] for r in articles)
    want_nato = Counter(r["source_id"] for r in articles if "nato" in r["topics"])
    assert ns["per_source"] == [(s, want[s], want_nato[s]) for s in sorted(want)]
    table = ns["nato_articles"]
    assert table.num_rows == sum(want_nato.values()) > 0
    scores = table.column("nato_score").to_pylist()
    assert scores == sorted(scores, reverse=True)
    assert "madina" in capsys.readouterr().out


def test_polars_example(in_sample, capsys):
    pytest.importorskip("polars")
    d, _ = in_sample
    articles, dead = truth_rows(d)
    ns = run_python("polars")
    got = {(r["day"], r["source"]): r["articles"] for r in ns["per_day"].to_dicts()}
    assert got == Counter((utc_day(r), r["source_id"]) for r in articles)
    weekly = ns["weekly_share"].to_dicts()
    assert sum(r["articles"] for r in weekly) == 15
    assert sum(r["nato"] for r in weekly) == sum("nato" in r["topics"] for r in articles)
    assert sum(r["ukraine"] for r in weekly) == sum("ukraine" in r["topics"] for r in articles)
    assert all(r["week"].weekday() == 0 for r in weekly)  # Mondays
    madina = ns["madina_stories"]
    assert madina.height == sum(r["source_id"] == "madina" and r["duplicate_of"] is None for r in articles)
    assert {(r["stage"], r["reason"], r["source_id"]): r["items"] for r in ns["dead"].to_dicts()} == Counter(
        (r["stage"], r["reason"], r["source_id"]) for r in dead)
    assert capsys.readouterr().out


def test_pandas_example(in_sample, capsys):
    pytest.importorskip("pandas")
    d, _ = in_sample
    articles, dead = truth_rows(d)
    ns = run_python("pandas")
    got = {(r.day, r.source): r.articles for r in ns["per_day"].itertuples()}
    assert got == Counter((utc_day(r), r["source_id"]) for r in articles)
    share = ns["nato_share"].to_dict()
    for s in ("madina", "sahil", "wadi"):
        rows = [r for r in articles if r["source_id"] == s]
        assert share[s] == round(sum("nato" in r["topics"] for r in rows) / len(rows), 3)
    assert len(ns["madina"]) == sum(r["source_id"] == "madina" for r in articles) == 5
    assert set(ns["madina"]["source"].astype(str)) == {"madina"}
    assert ns["dead_by_reason"].to_dict() == Counter((r["stage"], r["reason"]) for r in dead)
    assert capsys.readouterr().out


# --- BigQuery: structure only (no BigQuery here) ----------------------------------------------

DDL = re.compile(
    r"^CREATE (?:OR REPLACE )?EXTERNAL TABLE `(?P<table>[\w.-]+)`\s+"
    r"WITH PARTITION COLUMNS \((?P<parts>[^)]*)\)\s+"
    r"OPTIONS \((?P<options>.*)\)\s*;?\s*$", re.S)
OPTION = re.compile(r"(\w+)\s*=\s*(\[[^\]]*\]|'[^']*'|true|false)\s*(?:,|$)", re.I)
# options of CREATE EXTERNAL TABLE that apply to Parquet files with hive partitions
KNOWN_OPTIONS = {"format", "uris", "hive_partition_uri_prefix", "require_hive_partition_filter",
                 "enable_list_inference", "enum_as_string", "max_staleness", "metadata_cache_mode",
                 "description", "labels", "expiration_timestamp", "decimal_target_types",
                 "ignore_unknown_values", "max_bad_records", "file_set_spec_type", "reference_file_schema_uri"}


def parse_ddl(code: str) -> dict:
    m = DDL.match(code.strip())
    assert m, f"not a CREATE EXTERNAL TABLE … WITH PARTITION COLUMNS … OPTIONS (…) statement:\n{code}"
    parts = [p.split() for p in m["parts"].split(",")]
    body = re.sub(r"\s+", " ", m["options"]).strip()
    options = {k.lower(): v for k, v in OPTION.findall(body)}
    leftover = OPTION.sub("", body).strip(" ,")
    assert not leftover, f"unparsed options: {leftover!r}"
    return {"table": m["table"], "partitions": [(p[0], p[1].upper()) for p in parts], "options": options}


def layout_keys(root: Path) -> list[str]:
    """The partition keys of a written dataset, in folder order, from the files themselves."""
    keys = set()
    for f in root.rglob("*.parquet"):
        keys.add(tuple(seg.split("=", 1)[0] for seg in f.relative_to(root).parts[:-1]))
    assert len(keys) == 1, keys
    return list(keys.pop())


def test_bigquery_ddl_matches_the_layout(sample_out):
    d, _ = sample_out
    tables = {}
    for block_id, dataset in (("ddl-articles", "articles"), ("ddl-dead-letters", "dead_letter")):
        lang, kind, code = BLOCKS[block_id]
        assert (lang, kind) == ("sql", "bigquery")
        ddl = parse_ddl(code)
        opts = ddl["options"]
        assert set(opts) <= KNOWN_OPTIONS, set(opts) - KNOWN_OPTIONS
        assert opts["format"] == "'PARQUET'" and opts["enable_list_inference"].lower() == "true"
        keys = layout_keys(d / "out" / dataset)
        assert [name for name, _ in ddl["partitions"]] == keys
        assert dict(ddl["partitions"]).get("dt") == "DATE" and dict(ddl["partitions"]).get("source", "STRING") == "STRING"
        prefix = opts["hive_partition_uri_prefix"].strip("'")
        uris = re.findall(r"'([^']*)'", opts["uris"])
        assert prefix.startswith("gs://") and prefix.endswith(f"/{dataset}")
        assert uris and all(u.startswith(prefix + "/") for u in uris)
        tables[ddl["table"].rsplit(".", 1)[1]] = keys
    assert set(tables) == {"akhbar_articles", "akhbar_dead_letters"}


def test_bigquery_queries_name_real_columns():
    """Every identifier the queries use is a column, a partition key, an alias they define, a table
    alias, or SQL; a renamed column in the schema makes this fail."""
    sqlglot = pytest.importorskip("sqlglot")
    from sqlglot import exp

    columns = {
        "akhbar_articles": {n for n, *_ in ARTICLES_COLUMNS} | {"dt", "source"},
        "akhbar_dead_letters": {n for n, *_ in DEAD_LETTER_COLUMNS} | {"dt"},
    }
    queries = {k: code for k, (lang, kind, code) in BLOCKS.items() if kind == "bigquery" and not k.startswith("ddl")}
    assert len(queries) == 4
    for block_id, code in queries.items():
        tree = sqlglot.parse_one(code, read="bigquery")
        assert isinstance(tree, exp.Select), block_id
        tables = {t.name for t in tree.find_all(exp.Table)}
        assert tables and tables <= set(columns), (block_id, tables)
        known = set().union(*(columns[t] for t in tables))
        aliases = {a.alias for a in tree.find_all(exp.Alias)}
        for col in tree.find_all(exp.Column):
            assert col.name in known | aliases, f"{block_id}: {col.sql('bigquery')} is not a column"
