"""Parquet output: schema round trip, atomic files, idempotent names, readers skip leftovers."""
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from akhbar.schemas.arrow import ARTICLES_SCHEMA, SCHEMA_VERSION, article_row, data_dictionary_markdown
from akhbar.schemas.records import Article
from akhbar.transforms import store
from akhbar.transforms.sink import write_partition
from akhbar.transforms.state import load_prior

NOW = datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)


def article(i: int, **kw) -> Article:
    base = dict(article_id=f"{i:032x}", url=f"https://ex.com/{i}", source_id="ex", title=f"عنوان {i}",
                body=f"نص الخبر رقم {i} عن الناتو وأوكرانيا " * 5, published_at=None, fetched_at=NOW,
                language="ar", content_hash=f"h{i}", topics=("nato",), nato_score=0.9, ukraine_score=0.1,
                evidence=("nato:الناتو",), run_id="r1")
    base.update(kw)
    return Article(**base)


def write(root: Path, articles, run_id="r1"):
    folder = store.join(str(root), "articles", "dt=2026-11-24", "source=ex")
    return write_partition(folder, [article_row(a) for a in articles], ARTICLES_SCHEMA, run_id, "article_id")


def test_round_trip_with_pyarrow_and_duckdb(tmp_path):
    arts = [article(1, published_at=datetime(2023, 6, 15, 9, 30, tzinfo=timezone.utc)), article(2, duplicate_of=f"{1:032x}")]
    write(tmp_path, arts)
    t = ds.dataset(str(tmp_path / "articles"), partitioning="hive").to_table()
    assert t.num_rows == 2
    assert t.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    rows = sorted(t.to_pylist(), key=lambda r: r["article_id"])
    assert rows[0]["published_at"] == datetime(2023, 6, 15, 9, 30, tzinfo=timezone.utc)
    assert rows[0]["topics"] == ["nato"] and rows[0]["schema_version"] == SCHEMA_VERSION
    assert rows[1]["duplicate_of"] == f"{1:032x}" and rows[0]["source"] == "ex"
    n, dt = duckdb.connect().execute(
        f"SELECT count(*), min(dt) FROM read_parquet('{tmp_path}/articles/**/*.parquet', hive_partitioning=true)"
    ).fetchone()
    assert n == 2 and str(dt) == "2026-11-24"


def test_same_rows_same_file_name_so_a_retry_overwrites(tmp_path):
    first = write(tmp_path, [article(2), article(1)])
    again = write(tmp_path, [article(1), article(2)])
    assert [p for p, _ in first] == [p for p, _ in again]
    assert len(store.list_files(str(tmp_path / "articles"))) == 1


def test_chunks(tmp_path):
    folder = store.join(str(tmp_path), "articles", "dt=2026-11-24", "source=ex")
    written = write_partition(folder, [article_row(article(i)) for i in range(7)], ARTICLES_SCHEMA, "r", "article_id", max_rows=3)
    assert [n for _, n in written] == [3, 3, 1]


def test_readers_ignore_leftovers_of_a_crashed_write(tmp_path):
    write(tmp_path, [article(1)])
    part = tmp_path / "articles" / "dt=2026-11-24" / "source=ex"
    (part / ".part-x.parquet.abc.inprogress").write_bytes(b"PAR1 half a file")
    assert ds.dataset(str(tmp_path / "articles"), partitioning="hive").to_table().num_rows == 1
    q = f"SELECT count(*) FROM read_parquet('{tmp_path}/articles/**/*.parquet', hive_partitioning=true)"
    assert duckdb.connect().execute(q).fetchone()[0] == 1
    assert len(store.list_files(str(tmp_path / "articles"))) == 1


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "b" / "f.bin"
    store.write_atomic(str(target), b"hello")
    assert target.read_bytes() == b"hello" and os.listdir(target.parent) == ["f.bin"]


def test_write_atomic_failure_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.write_atomic(str(target), b"x")
    assert os.listdir(tmp_path) == []


def test_prior_state_comes_from_committed_files_only(tmp_path):
    write(tmp_path, [article(1), article(2, fetched_at=datetime(2020, 1, 1, tzinfo=timezone.utc))])
    (tmp_path / "articles" / "dt=2026-11-24" / "source=ex" / ".part-z.parquet.1.inprogress").write_bytes(b"x")
    prior = load_prior(str(tmp_path), now=NOW, window_days=30)
    assert prior.article_ids == {f"{1:032x}", f"{2:032x}"} and prior.content_hashes == {"h1", "h2"}
    assert [e.article_id for e, _ in prior.recent] == [f"{1:032x}"]  # the 2020 row is outside the window
    assert load_prior(str(tmp_path / "empty"), now=NOW).article_ids == frozenset()


def test_data_dictionary_is_current():
    doc = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
    assert doc.read_text(encoding="utf-8") == data_dictionary_markdown(), \
        "docs/schema.md is stale: python -m akhbar.schemas.arrow > docs/schema.md"


def test_near_duplicate_cache_is_derived_and_pruned(tmp_path):
    write(tmp_path, [article(1), article(2)])
    first = load_prior(str(tmp_path), now=NOW, window_days=30)
    cache = tmp_path / "_state" / "neardup"
    (cached,) = list(cache.iterdir())
    assert len(first.recent) == 2 and first.recent[0][0].shingles is not None
    again = load_prior(str(tmp_path), now=NOW, window_days=30)  # read from the cache this time
    assert [(e.article_id, e.signature, e.root) for e, _ in again.recent] == \
        [(e.article_id, e.signature, e.root) for e, _ in first.recent]
    assert list(cache.iterdir()) == [cached]
    later = load_prior(str(tmp_path), now=NOW.replace(year=2027), window_days=30)  # out of the window
    assert later.recent == () and list(cache.iterdir()) == [] and later.article_ids == first.article_ids
    cached.parent.mkdir(parents=True, exist_ok=True)
    (cache / "junk.parquet").write_bytes(b"not parquet")
    assert len(load_prior(str(tmp_path), now=NOW, window_days=30).recent) == 2  # unreadable cache: recomputed


def test_near_duplicate_cache_is_computed_again_when_fingerprints_are_made_another_way(tmp_path):
    """Cached entries depend on the shingle size, the permutations and the fingerprint version, not on
    the verification thresholds: another shingle size computes them again (and prunes the old ones)."""
    import dataclasses

    from akhbar.transforms.dedup import NearDupConfig, shingle_hashes

    write(tmp_path, [article(1), article(2)])
    cache = tmp_path / "_state" / "neardup"
    load_prior(str(tmp_path), now=NOW, window_days=30)
    (first,) = list(cache.iterdir())
    looser = NearDupConfig(containment=0.3, boiler_docs=9)
    load_prior(str(tmp_path), now=NOW, window_days=30, config=looser)
    assert list(cache.iterdir()) == [first]  # thresholds only: the same entries
    other = dataclasses.replace(looser, shingle=2)
    prior = load_prior(str(tmp_path), now=NOW, window_days=30, config=other)
    (second,) = list(cache.iterdir())
    assert second != first
    entry = prior.recent[0][0]
    assert entry.shingles.tolist() == shingle_hashes(article(int(entry.article_id, 16)).body, 2).tolist()


def _dead_letters(root: Path, run_id: str, day: str, rows: list[tuple[str, str, str]], at: str = "12:00") -> None:
    """Commit a dead-letter file of ``run_id`` in partition ``day`` with (url, stage, reason) rows
    that failed at ``at`` (UTC) that day."""
    from akhbar.schemas.arrow import DEAD_LETTER_SCHEMA, dead_letter_row
    from akhbar.schemas.records import DeadLetter

    when = datetime.fromisoformat(f"{day}T{at}:00+00:00")
    letters = [dead_letter_row(DeadLetter(url=u, source_id="s", stage=st, reason=r, message="m", time=when,
                                          run_id=run_id)) for u, st, r in rows]
    write_partition(str(root / "dead_letter" / f"dt={day}"), letters, DEAD_LETTER_SCHEMA, run_id, "url")


def test_pages_that_keep_failing_are_given_up_after_three_runs(tmp_path):
    from akhbar.transforms.state import PageFailures
    from akhbar.transforms.urls import article_id

    gone, down, young, stored = (f"https://news.example/{n}.html" for n in ("gone", "down", "young", "stored"))
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    for n, day in enumerate(("2026-11-28", "2026-11-29", "2026-11-30")):
        _dead_letters(tmp_path, f"run{n}", day, [(gone, "fetch", "http_404"), (down, "fetch", "http_503"),
                                                (down, "fetch", "timeout"), (stored, "extract", "empty_body")])
    _dead_letters(tmp_path, "run0", "2026-11-28", [(young, "extract", "empty_body")])
    _dead_letters(tmp_path, "run1", "2026-11-30", [(young, "extract", "empty_body")])
    _dead_letters(tmp_path, "run3", "2026-11-01", [(young, "fetch", "http_404")])  # outside a 7-day window
    _dead_letters(tmp_path, "run4", "2026-11-30", [("https://news.example/feed.xml", "poll", "http_404")])
    failing = PageFailures(str(tmp_path), window_days=7)
    # a site down at 3 runs is not given up; a page failing in 2 runs (one of them read twice) is not yet
    assert failing.given_up({article_id(stored)}, now=now) == {article_id(gone)}
    assert load_prior(str(tmp_path), now=now, window_days=7).given_up == {article_id(gone), article_id(stored)}
    assert PageFailures(str(tmp_path), window_days=40).given_up(now=now) >= {article_id(young)}
    # the next run's file is read (only it), and a damaged file means its pages are tried again
    _dead_letters(tmp_path, "run5", "2026-11-30", [(young, "fetch", "http_410")])
    assert failing.given_up(now=now) == {article_id(gone), article_id(stored), article_id(young)}
    damaged = next((tmp_path / "dead_letter" / "dt=2026-11-30").glob("part-run5-*.parquet"))
    damaged.write_bytes(b"not parquet")
    assert failing.given_up(now=now) == {article_id(gone), article_id(stored)}


def test_a_page_is_given_up_only_once_it_has_failed_for_an_hour(tmp_path):
    """Three runs minutes apart that found a page missing (a feed listing it before the site serves
    it) do not give it up; a failure an hour after the first does. The span is measured from the
    first to the latest failure, whichever files they are in."""
    from akhbar.transforms.state import GIVE_UP_AFTER_HOURS, PageFailures
    from akhbar.transforms.urls import article_id

    early = "https://news.example/early.html"
    now = datetime(2026, 11, 30, 23, tzinfo=timezone.utc)
    for n, at in enumerate(("10:00", "10:05", "10:10")):
        _dead_letters(tmp_path, f"run{n}", "2026-11-30", [(early, "fetch", "http_404")], at=at)
    assert GIVE_UP_AFTER_HOURS == 1
    failing = PageFailures(str(tmp_path), window_days=7)
    assert failing.given_up(now=now) == frozenset()
    assert PageFailures(str(tmp_path), window_days=7, after_hours=0).given_up(now=now) == {article_id(early)}
    assert PageFailures(str(tmp_path), window_days=7, after_hours=1 / 12).given_up(now=now) == {article_id(early)}
    assert load_prior(str(tmp_path), now=now, window_days=7).given_up == frozenset()
    _dead_letters(tmp_path, "run3", "2026-11-30", [(early, "extract", "empty_body")], at="10:59")
    assert failing.given_up(now=now) == frozenset()  # 59 minutes
    _dead_letters(tmp_path, "run4", "2026-11-30", [(early, "fetch", "http_404")], at="11:00")
    assert failing.given_up(now=now) == {article_id(early)}
    assert load_prior(str(tmp_path), now=now, window_days=7, give_up_after_hours=2).given_up == frozenset()


def test_the_cli_defaults_of_the_give_up_rule_are_the_code_s():
    """`akhbar run --help` states the rule without importing the code that applies it."""
    from akhbar.pipelines.cli import _parser
    from akhbar.transforms.state import GIVE_UP_AFTER_HOURS, MAX_PAGE_FAILURES

    parser = _parser()
    for argv in (["run", "--sources", "s.yaml", "--output", "o"], ["sources", "health", "o"], ["report", "o"]):
        assert parser.parse_args(argv).give_up_after == GIVE_UP_AFTER_HOURS
    (action,) = [a for a in parser._subparsers._group_actions[0].choices["run"]._actions
                 if a.dest == "give_up_after"]
    assert f"in {MAX_PAGE_FAILURES} runs" in action.help and f"(default {GIVE_UP_AFTER_HOURS:g};" in action.help


def test_free_text_columns_carry_no_min_max_statistics(tmp_path):
    """Readers skip files by date, id or source with the footer's min/max; body and title
    statistics would only add each value twice to every file."""
    import pyarrow.parquet as pq

    ((path, _),) = write(tmp_path, [article(1), article(2)])
    meta = pq.ParquetFile(path).metadata.row_group(0)
    stats = {meta.column(i).path_in_schema: meta.column(i).statistics for i in range(meta.num_columns)}
    assert stats["body"] is None and stats["title"] is None and stats["evidence.list.element"] is None
    assert stats["fetched_at"].has_min_max and stats["article_id"].min == f"{1:032x}"
    n, = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE fetched_at >= TIMESTAMPTZ "
                                  f"'2000-01-01' AND body LIKE '%الناتو%'").fetchone()
    assert n == 2


def test_files_of_a_bucket_are_read_several_at_once_in_order(monkeypatch):
    """``store.map_files`` keeps the order of the paths; on gs:// the calls overlap (four of them
    wait for each other here, which one call at a time never could), and a failed call's error is
    raised in its turn."""
    import threading

    monkeypatch.setattr(store, "GCS_READ_THREADS", 4)
    meet = threading.Barrier(4, timeout=30)

    def read(path):
        meet.wait()
        return path.upper()

    paths = [f"gs://bucket/out/{n}.parquet" for n in "abcdefgh"]
    assert list(store.map_files(read, paths)) == [p.upper() for p in paths]

    def failing(path):
        if path.endswith("c.parquet"):
            raise FileNotFoundError(path)
        return path

    got = store.map_files(failing, paths)
    assert [next(got), next(got)] == paths[:2]
    with pytest.raises(FileNotFoundError, match="c.parquet"):
        next(got)
    # local paths: one after the other, in this thread
    seen = []
    assert list(store.map_files(lambda p: seen.append(threading.get_ident()) or p, ["/x/a", "/x/b"])) == ["/x/a", "/x/b"]
    assert set(seen) == {threading.get_ident()}


def test_reading_a_column_a_file_lacks_names_the_file_and_the_column(tmp_path):
    """store.read_table reads one file without pyarrow's dataset layer: a column asked for and not
    there is still an error (the file reader alone would leave it out without a word)."""
    ((path, _),) = write(tmp_path, [article(1)])
    assert store.read_table(path, ["article_id"]).column(0).to_pylist() == [f"{1:032x}"]
    with pytest.raises(store.UnreadableFile, match=r"is not a readable Parquet file \(no column nope, zz\)"):
        store.read_table(path, ["zz", "article_id", "nope"])
    with pytest.raises(FileNotFoundError):
        store.read_table(str(tmp_path / "gone.parquet"))
