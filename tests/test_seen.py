"""The seen log (_state/seen/): a run opens only the articles files committed since the last one,
and what the log says is used only for files committed now under the same identity."""
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from akhbar.schemas.arrow import ARTICLES_SCHEMA, article_row
from akhbar.transforms import seen, store
from akhbar.transforms.sink import write_partition
from akhbar.transforms.state import load_prior, stored_article_ids
from tests.test_output import NOW, article

LATER = NOW + timedelta(days=400)  # no row is in the near-duplicate window: ids and hashes only


def add(out, first: int, rows: int = 3, day: str = "2026-11-24", **kw) -> set[str]:
    folder = os.path.join(out, "articles", f"dt={day}", "source=ex")
    ids = range(first, first + rows)
    write_partition(folder, [article_row(article(i, content_hash=f"h{i}", **kw)) for i in ids], ARTICLES_SCHEMA,
                    f"run{first}", "article_id")
    return {f"{i:032x}" for i in ids}


@pytest.fixture
def opened(monkeypatch):
    """The articles files a load opens (store.open_parquet and store.read_table counted, then
    called as they are)."""
    paths: list[str] = []

    def counting(real):
        def call(path, *args, **kw):
            if "/articles/" in path.replace(os.sep, "/"):
                paths.append(path)
            return real(path, *args, **kw)
        return call

    for name in ("open_parquet", "read_table"):
        monkeypatch.setattr(store, name, counting(getattr(store, name)))
    return paths


def segments(out) -> list[str]:
    folder = os.path.join(out, *seen.SEEN_LOG)
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_a_run_opens_only_the_files_committed_since_the_last(tmp_path, opened):
    out = str(tmp_path)
    ids = set().union(*(add(out, 10 * f) for f in range(5)))
    prior = load_prior(out, now=LATER)
    assert prior.article_ids == ids and prior.content_hashes == {f"h{int(i, 16)}" for i in ids}
    assert len(opened) == 5 and len(segments(out)) == 1
    opened.clear()
    assert load_prior(out, now=LATER) == prior and opened == []  # nothing new: no file opened
    ids |= add(out, 100)
    opened.clear()
    assert load_prior(out, now=LATER).article_ids == ids
    assert len(opened) == 1 and "run100" in opened[0] and len(segments(out)) == 2


def test_files_of_the_window_are_opened_only_until_their_entries_are_cached(tmp_path, opened):
    out = str(tmp_path)
    ids = add(out, 0) | add(out, 10)
    first = load_prior(out, now=NOW)
    assert len(first.recent) == 6 and len(opened) == 2
    opened.clear()
    again = load_prior(out, now=NOW)
    assert again == first and opened == []  # summaries and near-duplicate entries both cached
    assert again.article_ids == ids


def test_the_log_never_claims_an_article_that_is_not_stored(tmp_path):
    out = str(tmp_path)
    kept, removed = add(out, 0), add(out, 10)
    rewritten = add(out, 20)
    load_prior(out, now=LATER)
    folder = os.path.join(out, "articles", "dt=2026-11-24", "source=ex")
    by_run = {name.split("-")[1]: os.path.join(folder, name) for name in os.listdir(folder)}
    os.unlink(by_run["run10"])  # deleted by hand
    # rewritten by hand under the same name: one row removed (a takedown)
    path = by_run["run20"]
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    prior = load_prior(out, now=LATER)
    assert prior.article_ids == kept | (rewritten - {f"{20:032x}"})
    assert not prior.article_ids & removed and "h20" not in prior.content_hashes


def test_segments_stay_few_and_rows_are_rewritten_a_few_times_only(tmp_path):
    out = str(tmp_path)
    ids: set[str] = set()
    rows_written = 0
    known = set()
    for run in range(40):
        ids |= add(out, 10 * run)
        assert load_prior(out, now=LATER).article_ids == ids
        names = set(segments(out))
        assert len(names) <= seen.MAX_SEGMENTS
        for name in names - known:
            rows_written += pq.read_metadata(os.path.join(out, *seen.SEEN_LOG, name)).num_rows
        known = names
    # 120 rows: each rewritten a logarithmic number of times, not at every run (40 × 120 / 2)
    assert rows_written <= 120 * 5, rows_written
    # what is left summarises every file exactly once
    tables = [pq.read_table(os.path.join(out, *seen.SEEN_LOG, n)) for n in segments(out)]
    files = [f for t in tables for f in set(t.column("file").to_pylist())]
    assert len(files) == len(set(files)) == 40


def test_unreadable_or_foreign_segments_are_ignored_then_dropped(tmp_path, opened):
    out = str(tmp_path)
    ids = add(out, 0) | add(out, 10)
    load_prior(out, now=LATER)
    folder = os.path.join(out, *seen.SEEN_LOG)
    (good,) = segments(out)
    with open(os.path.join(folder, good), "r+b") as f:  # damaged in place
        f.truncate(20)
    other = pa.table({"file": ["x"]})  # another format: not trusted
    pq.write_table(other, os.path.join(folder, "seen-other.parquet"))
    opened.clear()
    assert load_prior(out, now=LATER).article_ids == ids
    assert len(opened) == 2  # both files read again
    for run in range(2, 2 + seen.MAX_SEGMENTS):  # enough segments to merge
        ids |= add(out, 10 * run)
        assert load_prior(out, now=LATER).article_ids == ids
    assert good not in segments(out) and "seen-other.parquet" not in segments(out)


def test_a_file_of_no_rows_is_summarised_too(tmp_path, opened):
    out = str(tmp_path)
    ids = add(out, 0)
    folder = os.path.join(out, "articles", "dt=2026-11-24", "source=ex")
    pq.write_table(ARTICLES_SCHEMA.empty_table(), os.path.join(folder, "part-empty.parquet"))
    assert load_prior(out, now=LATER).article_ids == ids
    opened.clear()
    assert load_prior(out, now=LATER).article_ids == ids and opened == []


def test_merge_inputs():
    assert seen.merge_inputs([]) == [] and seen.merge_inputs([("a", 5)]) == ["a"]
    # the biggest waits until the others hold as many rows
    assert sorted(seen.merge_inputs([("big", 100), ("a", 10), ("b", 20)])) == ["a", "b"]
    assert sorted(seen.merge_inputs([("big", 30), ("a", 10), ("b", 20)])) == ["a", "b", "big"]


def test_summaries_and_entries_round_trip(tmp_path):
    from akhbar.transforms.dedup import IndexEntry, NearDupConfig

    when = datetime(2026, 11, 24, tzinfo=timezone.utc)
    summaries = {("dt=1/source=a/x.parquet", "1|2|3"): seen.Summary(["i1", "i2"], ["h1", "h2"], when),
                 ("dt=1/source=a/y.parquet", "4|5|6"): seen.Summary([], [], None)}
    log = seen.SeenLog(str(tmp_path))
    for (file, ident), summary in summaries.items():
        log.add(file, tuple(int(n) for n in ident.split("|")), summary)
    log.save()
    log = seen.SeenLog(str(tmp_path)).read()
    assert {key: s.newest for key, s in log.known.items()} == {key: s.newest for key, s in summaries.items()}
    assert log.lookup("dt=1/source=a/x.parquet", (1, 2, 3)).newest == when
    assert log.stored() == ({"i1", "i2"}, {"h1", "h2"})  # of the files looked up and found only
    entry = IndexEntry("i1", "i0", bytes(512), 7, np.array([3, 1], dtype=np.uint32), "a", when)
    old = IndexEntry("i2", "i2", bytes(512), 5, None, "a", None)
    entries = {("dt=1/source=a/x.parquet", "1|2|3"): [(entry, when), (old, when - timedelta(days=40))]}
    log = seen.EntryLog(str(tmp_path), NearDupConfig(), when - timedelta(days=30))
    ((key, [(got, fetched)]),) = log.values(log.table(entries)).items()  # the old one is out of the window
    assert key == ("dt=1/source=a/x.parquet", "1|2|3") and fetched == when
    assert (got.article_id, got.root, got.signature, got.size, got.shingles.tolist(), got.source_id, got.when) == \
        ("i1", "i0", bytes(512), 7, [3, 1], "a", when)


def test_segments_of_files_all_gone_are_merged_away(tmp_path, monkeypatch):
    import shutil

    out = str(tmp_path)
    limit = seen.MAX_SEGMENTS
    monkeypatch.setattr(seen, "MAX_SEGMENTS", 100)  # one segment a run, none merged
    for run in range(limit + 1):
        add(out, 10 * run)
        load_prior(out, now=LATER)
    assert len(segments(out)) == limit + 1
    monkeypatch.setattr(seen, "MAX_SEGMENTS", limit)
    shutil.rmtree(os.path.join(out, "articles"))  # every article deleted by hand
    assert load_prior(out, now=LATER).article_ids == frozenset()
    assert segments(out) == []  # nothing listed: every segment merged into nothing


def test_an_older_versions_per_file_cache_is_cleared(tmp_path):
    """Before the entry log, _state/neardup/ held one cache file per articles file: the first run
    with the log computes the window's entries again and deletes those files."""
    out = str(tmp_path)
    add(out, 0)
    cache = os.path.join(out, *seen.ENTRY_LOG)
    os.makedirs(cache)
    pq.write_table(pa.table({"article_id": ["x"]}), os.path.join(cache, "0123456789abcdef0123456789abcdef.parquet"))
    assert len(load_prior(out, now=NOW).recent) == 3
    (only,) = os.listdir(cache)
    assert only.startswith("entries-")


def test_health_reads_the_ids_from_the_log_and_writes_nothing(tmp_path, opened):
    out = str(tmp_path)
    ids = add(out, 0) | add(out, 10)
    load_prior(out, now=LATER)
    ids |= add(out, 20)  # not in the log yet
    before = segments(out)
    opened.clear()
    assert stored_article_ids(out) == ids
    assert len(opened) == 1 and "run20" in opened[0] and segments(out) == before


def test_dead_letters_are_read_once_and_health_writes_nothing(tmp_path, monkeypatch):
    """The failure log (_state/failures/): a second reader of the window's dead letters (a later
    run) opens none of them and gets the same pages; ``write_log=False`` (health, report) reads
    the log and writes nothing; files that leave the window leave the log."""
    from akhbar.transforms.state import PageFailures
    from akhbar.transforms.urls import article_id
    from tests.test_output import _dead_letters

    out, gone = str(tmp_path), "https://news.example/gone.html"
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    for n, day in enumerate(("2026-11-28", "2026-11-29", "2026-11-30")):
        _dead_letters(tmp_path, f"run{n}", day, [(gone, "fetch", "http_404"), (gone + "?down", "fetch", "http_503")])
    log = os.path.join(out, *seen.FAILURE_LOG)
    read: list[str] = []
    real = store.read_table

    def counting(path, *args, **kw):
        if "/dead_letter/" in path.replace(os.sep, "/"):
            read.append(path)
        return real(path, *args, **kw)

    monkeypatch.setattr(store, "read_table", counting)
    assert PageFailures(out, 7, write_log=False).given_up(now=now) == {article_id(gone)}
    assert len(read) == 3 and not os.path.exists(log)  # health: nothing written
    assert PageFailures(out, 7).given_up(now=now) == {article_id(gone)}
    assert len(os.listdir(log)) == 1
    read.clear()
    assert PageFailures(out, 7).given_up(now=now) == {article_id(gone)}
    assert PageFailures(out, 7, after_hours=0, write_log=False).given_up(now=now) == {article_id(gone)}
    assert read == []  # every file from the log
    # three days on, with a 1-day window, none of those files is in the window: the log keeps
    # only the new day's file
    later = now + timedelta(days=3)
    _dead_letters(tmp_path, "run9", "2026-12-03", [(gone, "fetch", "http_404")])
    assert PageFailures(out, 1).given_up(now=later) == frozenset()
    (segment,) = os.listdir(log)
    (new,) = (tmp_path / "dead_letter").rglob("part-run9-*.parquet")
    assert set(pq.read_table(os.path.join(log, segment)).column("file").to_pylist()) == \
        {new.relative_to(tmp_path / "dead_letter").as_posix()}


def test_a_file_in_two_segments_is_not_doubled_by_a_merge(tmp_path, monkeypatch):
    """A run killed between writing a merged segment and deleting its inputs leaves a file's
    rows in two segments; the next merge takes them once, and the window holds each article once."""
    import shutil

    out = str(tmp_path)
    ids = add(out, 0, day="2026-11-24")
    load_prior(out, now=NOW)
    for name in ("seen", "neardup"):
        folder = os.path.join(out, "_state", name)
        (segment,) = os.listdir(folder)
        prefix = segment.split("-")[0]
        shutil.copy(os.path.join(folder, segment), os.path.join(folder, f"{prefix}-copy.parquet"))
    for run in range(1, seen.MAX_SEGMENTS + 2):  # enough runs for merges
        ids |= add(out, 10 * run)
        prior = load_prior(out, now=NOW)
        assert prior.article_ids == ids
        assert len(prior.recent) == len({e.article_id for e, _ in prior.recent}) == len(ids)
    for name in ("seen", "neardup"):
        folder = os.path.join(out, "_state", name)
        rows = [r for n in os.listdir(folder) for r in pq.read_table(os.path.join(folder, n)).to_pylist()]
        keys = [(r["file"], r["ident"], r["article_id"]) for r in rows]
        assert len(keys) == len(set(keys)), name


def test_a_file_url_output_names_its_files_as_a_plain_path_does(tmp_path, opened):
    out = str(tmp_path)
    ids = add(out, 0) | add(out, 10)
    assert load_prior(f"file://{out}", now=NOW).article_ids == ids
    opened.clear()
    assert load_prior(out, now=NOW).article_ids == ids and opened == []  # one log for both spellings
    (segment,) = segments(out)
    files = set(pq.read_table(os.path.join(out, *seen.SEEN_LOG, segment)).column("file").to_pylist())
    assert all(f.startswith("dt=2026-11-24/source=ex/part-") for f in files)
