"""End to end: the CLI against the sample site on 127.0.0.1, read back with pyarrow and DuckDB."""
import json
import os
import subprocess
import sys

import duckdb
import pyarrow.dataset as ds
import pytest

from akhbar.pipelines.cli import main
from akhbar.schemas.arrow import SCHEMA_VERSION
from akhbar.sample.site import expected, sources_yaml


@pytest.fixture()
def sources_file(sample_site, tmp_path):
    p = tmp_path / "sources.yaml"
    p.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    return p


def read_articles(out):
    return ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()


def test_run_twice(sample_site, sources_file, tmp_path, capsys):
    out = tmp_path / "out"
    truth = expected(sample_site.base_url)
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--allow-private-hosts", "--host-interval", "0"]) == 0
    printed = capsys.readouterr().out
    rows = read_articles(out)
    urls = [r["url"] for r in rows]
    assert sorted(urls) == sorted(truth["articles"]) and len(set(urls)) == len(urls)
    assert not set(truth["exact_duplicate_urls"]) & set(urls)
    by_url = {r["url"]: r for r in rows}
    (later, first), = truth["near_duplicates"]
    assert by_url[later]["duplicate_of"] == by_url[first]["article_id"]
    assert sum(1 for r in rows if r["duplicate_of"]) == 1
    seeds = [r for r in rows if "/seed-" in r["url"]]
    assert len(seeds) == 5 and all(set(r["topics"]) == {"nato", "ukraine"} for r in seeds)
    for r in rows:
        assert r["body"] and r["title"] and r["fetched_at"] and r["language"] == "ar" and r["schema_version"] == SCHEMA_VERSION
        assert 0 <= r["nato_score"] <= 1 and 0 <= r["ukraine_score"] <= 1 and r["source"] == r["source_id"]
        assert r["published_at"] is not None
    con = duckdb.connect()
    n, nato, sources = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE list_contains(topics, 'nato')), count(DISTINCT source) "
        f"FROM read_parquet('{out}/articles/**/*.parquet', hive_partitioning=true)").fetchone()
    assert n == 15 and nato >= 5 and sources == 3
    dead = con.execute(f"SELECT url, stage, reason, source_id FROM read_parquet('{out}/dead_letter/**/*.parquet')").fetchall()
    assert sorted((u, r) for u, _, r, _ in dead) == sorted(truth["dead_letters"].items())
    assert all(stage and source for _, stage, _, source in dead)
    # the summary and its JSON report
    assert "wrote 15 article rows" in printed and "hive_partitioning=true" in printed
    (report,) = (out / "_reports").iterdir()
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["articles_written"] == 15 and summary["near_duplicates"] == 1
    assert summary["exact_duplicates_dropped"] == 1 and summary["dead_letters"] == 4

    # the second run adds nothing
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--allow-private-hosts", "--host-interval", "0"]) == 0
    assert "wrote 0 article rows" in capsys.readouterr().out
    assert len(read_articles(out)) == 15


def test_private_hosts_refused_without_the_flag(sources_file, tmp_path, sample_site):
    out = tmp_path / "out"
    before = len(sample_site.requests)
    assert main(["run", "--sources", str(sources_file), "--output", str(out)]) == 0
    assert len(sample_site.requests) == before  # not one request reached the site
    # no article stored, yet the dataset is there for readers: empty, not missing
    assert ds.dataset(str(out / "articles"), partitioning="hive").count_rows() == 0
    assert not list((out / "articles").iterdir())
    reasons = duckdb.connect().execute(
        f"SELECT DISTINCT reason FROM read_parquet('{out}/dead_letter/**/*.parquet')").fetchall()
    assert reasons == [("blocked_address",)]


def test_streaming_mode_on_the_local_runner_says_how_it_runs(sources_file, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--mode", "streaming", "--duration", "1",
                 "--allow-private-hosts", "--host-interval", "0", "--runner", "DirectRunner"]) == 0
    assert "bounded cycles" in capsys.readouterr().err
    assert len(read_articles(out)) == 15  # the first cycle polls every source


def test_bad_lexicon_and_bad_numbers_fail_before_running(sources_file, tmp_path, capsys):
    lex = tmp_path / "lex.yaml"
    lex.write_text("version: 1\ntopics: {nato: {entries: [{term: الناتو}]}}\n", encoding="utf-8")
    out = tmp_path / "o"
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--lexicon", str(lex)]) == 2
    assert "lexicon" in capsys.readouterr().err
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--fetch-concurrency", "0"]) == 2
    assert "--fetch-concurrency must be at least 1" in capsys.readouterr().err
    assert not out.exists()


def test_unsupported_output_scheme(sources_file, capsys):
    assert main(["run", "--sources", str(sources_file), "--output", "s3://bucket/x"]) == 2
    assert "unsupported output" in capsys.readouterr().err


def test_probe(sample_site, capsys):
    assert main(["sources", "probe", f"{sample_site.base_url}/wadi/world.xml", "--allow-private-hosts", "--articles", "2"]) == 0
    out = capsys.readouterr().out
    assert "format: atom10" in out and out.count("\narticle ") == 2 and "language:  ar" in out
    assert main(["sources", "probe", f"{sample_site.base_url}/qarya/news.xml", "--allow-private-hosts"]) == 1
    assert "http_500" in capsys.readouterr().out


def test_sample_command_as_a_user_runs_it(tmp_path):
    env = {**os.environ, "NO_GCE_CHECK": "true"}
    proc = subprocess.run([sys.executable, "-m", "akhbar", "sample", "--output", str(tmp_path / "s"), "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 15 article rows" in proc.stdout and "apitools" not in proc.stdout + proc.stderr
    # the query the summary offers runs as printed
    pasted = proc.stdout.rstrip().splitlines()[-1].strip()
    shown = subprocess.run(["bash", "-c", pasted], capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "madina" in shown.stdout and "near_dups" in shown.stdout
    assert duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/s/articles/**/*.parquet', hive_partitioning=true)").fetchone()[0] == 15


def test_copies_met_in_a_later_run_point_to_the_stored_article(server, tmp_path):
    from akhbar.sample.site import load_records
    from tests.servers import Reply

    rec = next(r for r in load_records() if r["id"] == "seed-002")
    paras = rec["body"].split("\n")
    edited = paras[:-3] + ["وقال مسؤول في الحلف إن الاجتماع سيستمر يومين."]  # trimmed, with a line added

    def page(ps):
        return ("<html lang='ar'><body><article><h1>" + rec["title"] + "</h1>" +
                "".join(f"<p>{p}</p>" for p in ps) + "</article></body></html>").encode()

    def feed(path):
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title><item><title>t</title>'
                f'<link>{server.url(path)}</link><pubDate>Tue, 29 Nov 2022 08:00:00 GMT</pubDate></item></channel></rss>').encode()

    html = {"Content-Type": "text/html; charset=utf-8"}
    server.route("/a/original.html", Reply(200, page(paras), html))
    server.route("/b/copy.html", Reply(200, page(edited), html))
    server.route("/a.xml", Reply(200, feed("/a/original.html"), {"Content-Type": "application/rss+xml"}))
    server.route("/b.xml", Reply(200, feed("/b/copy.html"), {"Content-Type": "application/rss+xml"}))
    out = tmp_path / "out"
    for source, path in (("outlet_a", "/a.xml"), ("outlet_b", "/b.xml")):
        sources = tmp_path / f"{source}.yaml"
        sources.write_text(f"sources:\n  - id: {source}\n    feeds: [{server.url(path)}]\n", encoding="utf-8")
        assert main(["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts",
                     "--host-interval", "0"]) == 0
    rows = {r["source_id"]: r for r in read_articles(out)}
    assert rows["outlet_a"]["duplicate_of"] is None
    assert rows["outlet_b"]["duplicate_of"] == rows["outlet_a"]["article_id"]


def test_a_page_that_keeps_failing_is_given_up_after_three_runs(server, tmp_path, monkeypatch, capsys):
    """A feed that changes at every poll keeps listing a page that answers 404 and one whose site
    answers 503 (and one good article, and an entry whose link is malformed). With the default
    --give-up-after (1 hour), four runs a few seconds apart all fetch the 404 page: it may be a page
    the site does not serve yet. With --give-up-after 0 it is left out from then on (it failed in 3
    runs and more); the 503 page, a failure of the moment, is tried at every run; the malformed
    link stops being reported the same way. An entry without a link is reported by the first run
    only: the feed state remembers it while the feed lists it."""
    from akhbar.sample.site import load_records
    from tests.servers import Reply, article_reply

    server.route("/n/good.html", article_reply(next(r for r in load_records() if r["id"].startswith("ant-"))))
    polls = []

    def feed(handler):
        polls.append(1)
        items = ("".join(f"<item><title>{n}</title><link>{server.url(f'/n/{n}.html')}</link></item>"
                         for n in ("gone", "busy", "good")) + "<item><title>bad</title><link>http://[::1/x</link></item>"
                 '<item><title>no link</title><guid isPermaLink="false">entry-7</guid></item>')
        body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
                f"<lastBuildDate>Mon, 30 Nov 2026 0{len(polls)}:00:00 GMT</lastBuildDate>{items}</channel></rss>")
        return Reply(200, body.encode(), {"Content-Type": "application/rss+xml"})

    server.route("/feed.xml", feed)
    server.route("/n/gone.html", Reply(404, b"not here"))
    server.route("/n/busy.html", Reply(503, b"busy"))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - id: outlet\n    feeds: [{server.url('/feed.xml')}]\n", encoding="utf-8")
    out = tmp_path / "out"
    run = ["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts", "--host-interval", "0",
           "--retries", "0"]
    for _ in range(4):
        assert main(run) == 0
    assert server.count("/n/gone.html") == 4  # failing for seconds only: not given up
    capsys.readouterr()
    assert main(["sources", "health", str(out), "--json"]) == 0
    assert [d["pages_given_up"] for d in json.loads(capsys.readouterr().out)] == [0]
    for _ in range(2):
        assert main([*run, "--give-up-after", "0"]) == 0
    assert server.count("/n/gone.html") == 4 and server.count("/n/busy.html") == 6
    assert server.count("/n/good.html") == 1 and len(read_articles(out)) == 1
    dead = duckdb.connect().execute(
        f"SELECT reason, count(*) FROM read_parquet('{out}/dead_letter/**/*.parquet') GROUP BY reason").fetchall()
    assert dict(dead) == {"http_404": 4, "http_503": 6, "bad_url": 4, "entry_without_link": 1}
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "_reports").glob("run-*.json"))]
    reports.sort(key=lambda r: r["finished_at"])
    assert [r["counters"].get("poll.given_up", 0) for r in reports] == [0, 0, 0, 0, 2, 2]
    assert [r["counters"].get("poll.linkless_reported_before", 0) for r in reports] == [0, 1, 1, 1, 1, 1]
    # `akhbar sources health` and the report count it for its feed under the same rule, and
    # docs/querying.md's query lists it
    capsys.readouterr()
    assert main(["sources", "health", str(out), "--give-up-after", "0"]) == 0
    head, row = capsys.readouterr().out.splitlines()
    column = head.index("given up")
    assert row[column:column + len("given up")].strip() == "2"  # the page and the malformed link
    assert main(["sources", "health", str(out), "--json", "--give-up-after", "0"]) == 0
    assert [d["pages_given_up"] for d in json.loads(capsys.readouterr().out)] == [2]
    from akhbar.pipelines import report

    assert report.load(str(out)).given_up == {}
    assert report.load(str(out), give_up_after_hours=0).given_up == {server.url("/feed.xml"): 2}
    from tests.test_querying import run_duckdb

    monkeypatch.chdir(tmp_path)
    con = duckdb.connect()
    run_duckdb(con, "views")
    assert run_duckdb(con, "given-up") == [[]]  # the default span: 1 hour
    (given,) = run_duckdb(con, "given-up", replace={"INTERVAL 1 HOUR": "INTERVAL 0 HOUR"})
    assert [(r["url"], r["reasons"], r["runs"]) for r in given] == [(server.url("/n/gone.html"), ["http_404"], 4)]


def test_max_articles_per_poll_leaves_older_entries_for_later_runs(server, tmp_path):
    """A feed listing more entries than the source's limit: each run takes the newest entries not
    stored yet, so the older ones are written by later runs, although the feed never changes (it
    keeps its ETag: the runs that have entries left ask for it without validators)."""
    from tests.servers import route_dated_feed

    feed_url = route_dated_feed(server, 5)
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - id: outlet\n    max_articles_per_poll: 2\n    feeds: [{feed_url}]\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    written = []
    for _ in range(4):
        assert main(["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts",
                     "--host-interval", "0"]) == 0
        written.append(sorted(r["url"].rsplit("/", 1)[1] for r in read_articles(out)))
    assert written == [["4.html", "5.html"], ["2.html", "3.html", "4.html", "5.html"],
                       [f"{d}.html" for d in range(1, 6)], [f"{d}.html" for d in range(1, 6)]]
    assert all(server.count(f"/n/{d}.html") == 1 for d in range(1, 6))  # each page fetched once
    state = json.loads((out / "_state" / "feeds.json").read_text())["feeds"][0]
    assert state["backlog"] == 0 and state["etag"] == '"v1"'
    # the last run, with nothing left over, asked with the ETag and got a 304
    assert [h.get("if-none-match") for p, h in server.hits if p == "/feed.xml"] == [None, None, None, '"v1"']
