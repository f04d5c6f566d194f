"""akhbar replay: failed article items from dead_letter/ go through the same graph again."""
from datetime import date
from urllib.parse import urlsplit

import duckdb
import pyarrow.dataset as ds

from akhbar.pipelines.cli import main
from akhbar.pipelines.replay import plan_replay
from akhbar.sample.site import build_site, expected
from akhbar.schemas.sources import load_sources
from tests.servers import Reply


def rss(items):
    body = "".join(f"<item><title>خبر {i}</title><link>{u}</link></item>" for i, u in enumerate(items))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            f"<link>http://x/</link>{body}</channel></rss>").encode()


def html_reply(resp):
    return Reply(200, resp.body, {"Content-Type": resp.content_type})


def test_a_page_that_failed_is_written_by_replay(server, tmp_path, capsys):
    site = build_site(server.base_url)
    first, second = sorted(expected(server.base_url)["articles"])[:2]
    late = server.url("/late/story.html")
    gone = server.url("/gone/story.html")
    server.route("/feed.xml", Reply(200, rss([first, late, gone]), {"Content-Type": "application/rss+xml"}))
    server.route(urlsplit(first).path, html_reply(site[urlsplit(first).path]))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - id: ex\n    feeds: [{server.url('/feed.xml')}]\n    min_interval: 0\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts"]) == 0
    con = duckdb.connect()
    dead = f"read_parquet('{out}/dead_letter/**/*.parquet', hive_partitioning=true)"
    assert sorted(con.execute(f"SELECT url, reason FROM {dead}").fetchall()) == \
        sorted([(gone, "http_404"), (late, "http_404")])
    capsys.readouterr()

    # the late page exists now; the gone one still 404s
    server.route("/late/story.html", html_reply(site[urlsplit(second).path]))
    feed_hits = server.count("/feed.xml")
    assert main(["replay", str(out), "--sources", str(sources), "--allow-private-hosts", "--reason", "http_404"]) == 0
    printed = capsys.readouterr().out
    assert "2 URLs from 2 matching dead letters" in printed and "wrote 1 article rows" in printed
    assert server.count("/feed.xml") == feed_hits  # replay does not poll
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()
    assert sorted(r["url"] for r in rows) == sorted([first, late])
    replayed = next(r for r in rows if r["url"] == late)
    assert replayed["source_id"] == "ex" and replayed["body"] and replayed["feed_url"] == server.url("/feed.xml")
    runs = con.execute(f"SELECT run_id, url FROM {dead} ORDER BY run_id").fetchall()
    assert len({r for r, _ in runs}) == 2 and [u for _, u in runs].count(gone) == 2  # a new dead letter

    # replaying again: the stored URL is skipped as usual, the gone one fails again
    assert main(["replay", str(out), "--sources", str(sources), "--allow-private-hosts"]) == 0
    assert "wrote 0 article rows" in capsys.readouterr().out
    assert server.count("/late/story.html") == 2  # 404 once, fetched once, never again
    # filters: nothing of another reason, stage or period
    assert main(["replay", str(out), "--sources", str(sources), "--allow-private-hosts", "--reason", "http_500"]) == 0
    assert " 0 URLs from 0 matching" in capsys.readouterr().out
    srcs = load_sources(str(sources))
    assert sorted(c.url for c in plan_replay(str(out), srcs).candidates) == [gone, late]  # the graph skips `late`
    for kw in ({"stages": ("extract",)}, {"since": date(2100, 1, 1)}, {"until": date(2000, 1, 1)}):
        assert plan_replay(str(out), srcs, **kw).candidates == []
    assert plan_replay(str(out), srcs, reasons=["http_404"]).dead_letters_read == 4  # run, replay, replay


def test_replay_skips_sources_not_in_the_file_and_bad_dates(server, tmp_path, capsys):
    out = tmp_path / "out"
    server.route("/feed.xml", Reply(200, rss([server.url("/missing.html")]), {"Content-Type": "application/rss+xml"}))
    sources = tmp_path / "s.yaml"
    sources.write_text(f"sources:\n  - id: ex\n    feeds: [{server.url('/feed.xml')}]\n    min_interval: 0\n")
    assert main(["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts"]) == 0
    other = tmp_path / "other.yaml"
    other.write_text(f"sources:\n  - id: other\n    feeds: [{server.url('/feed.xml')}]\n")
    plan = plan_replay(str(out), load_sources(str(other)))
    assert plan.candidates == [] and plan.skipped == {"source not in the sources file": 1}
    try:
        main(["replay", str(out), "--sources", str(other), "--since", "2026-02-30"])
    except SystemExit as e:
        assert e.code == 2
    assert "not a YYYY-MM-DD date" in capsys.readouterr().err
