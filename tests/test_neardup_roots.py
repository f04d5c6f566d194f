"""A near-duplicate's ``duplicate_of`` always names a stored article, even after the first-seen
copy of its cluster was deleted by hand (a takedown): the stored state is checked against the
rows that exist, and the cluster's first surviving copy becomes its root."""
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from akhbar.pipelines.cli import main
from akhbar.sample.site import build_site, expected, load_records
from akhbar.schemas.arrow import ARTICLES_SCHEMA, article_row
from akhbar.transforms import steps
from akhbar.transforms.dedup import NearDupConfig, content_hash
from akhbar.transforms.sink import write_partition
from akhbar.transforms.state import load_prior
from tests.servers import Reply
from tests.test_dedup import OTHER, WIRE
from tests.test_output import article

NOW = datetime(2026, 11, 24, 5, 0, tzinfo=timezone.utc)
PART = ("articles", "dt=2026-11-24", "source=ex")


def copy_of(i: int, text: str, hours: int, **kw):
    return article(i, body=text, content_hash=content_hash(text), published_at=NOW - timedelta(hours=hours), **kw)


def write(out, run_id: str, articles) -> str:
    (path, _), = write_partition(str(out.joinpath(*PART)), [article_row(a) for a in articles], ARTICLES_SCHEMA,
                                 run_id, "article_id")
    return path


def delete_rows(path: str, article_ids: set[str]) -> None:
    """What an operator does by hand: rewrite the file without those rows."""
    t = pq.read_table(path)
    pq.write_table(t.filter(pc.invert(pc.is_in(t.column("article_id"), pa.array(sorted(article_ids))))), path)


def assign(out, new_article) -> dict[str, str]:
    prior = load_prior(str(out), now=NOW, window_days=30)
    return steps.near_duplicate_assignments([steps.near_duplicate_key(new_article)], prior, NearDupConfig())


def test_a_copy_of_a_cluster_whose_root_was_deleted_names_the_first_surviving_copy(tmp_path):
    root = copy_of(1, WIRE, 10)
    first_copy = copy_of(2, WIRE + " المصدر: أ ف ب", 8, duplicate_of=root.article_id)
    second_copy = copy_of(3, WIRE.replace("الخميس", "اليوم"), 6, duplicate_of=root.article_id)
    unrelated = copy_of(4, OTHER, 9)
    first = write(tmp_path, "run1", [root, unrelated])
    write(tmp_path, "run2", [second_copy, first_copy])
    newcomer = copy_of(5, WIRE.replace("تدريجيا", "ملموسا"), 1)
    assert assign(tmp_path, newcomer) == {newcomer.article_id: root.article_id}  # the root is stored: it

    delete_rows(first, {root.article_id})
    prior = load_prior(str(tmp_path), now=NOW, window_days=30)
    roots = {e.article_id: e.root for e, _ in prior.recent}
    assert roots == {first_copy.article_id: first_copy.article_id, second_copy.article_id: first_copy.article_id,
                     unrelated.article_id: unrelated.article_id}
    assert assign(tmp_path, newcomer) == {newcomer.article_id: first_copy.article_id}

    # the whole file gone (not only a row): the same
    (tmp_path.joinpath(*PART) / first.rsplit("/", 1)[-1]).unlink()
    assert assign(tmp_path, newcomer) == {newcomer.article_id: first_copy.article_id}
    # the stored rows themselves are left as they were
    rows = ds.dataset(str(tmp_path / "articles"), partitioning="hive").to_table().to_pylist()
    assert {r["article_id"]: r["duplicate_of"] for r in rows} == \
        {first_copy.article_id: root.article_id, second_copy.article_id: root.article_id}


def rss(items: list[tuple[str, datetime | None]]) -> bytes:
    body = "".join(f"<item><title>خبر {i}</title><link>{u}</link>"
                   + (f"<pubDate>{format_datetime(d)}</pubDate>" if d else "") + "</item>"
                   for i, (u, d) in enumerate(items))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
            f"<link>http://x/</link>{body}</channel></rss>").encode()


def test_a_run_after_the_root_was_deleted_by_hand_writes_no_dangling_duplicate_of(server, tmp_path, capsys):
    site = build_site(server.base_url)
    (later, earlier), = expected(server.base_url)["near_duplicates"]
    for url in (earlier, later):
        resp = site[urlsplit(url).path]
        server.route(urlsplit(url).path, Reply(200, resp.body, {"Content-Type": resp.content_type}))
    server.route("/feed.xml", Reply(200, rss([(earlier, None), (later, None)]), {"Content-Type": "application/rss+xml"}))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - id: ex\n    feeds: [{server.url('/feed.xml')}]\n    min_interval: 0\n",
                       encoding="utf-8")
    out = tmp_path / "out"
    argv = ["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts", "--host-interval", "0"]
    assert main(argv) == 0
    capsys.readouterr()
    table = ds.dataset(str(out / "articles"), partitioning="hive").to_table()
    by_url = {r["url"]: r for r in table.to_pylist()}
    root_id, copy_id = by_url[earlier]["article_id"], by_url[later]["article_id"]
    assert by_url[later]["duplicate_of"] == root_id

    # the first-seen copy is taken down by hand: its row is removed from its file
    (path,) = [f for f in ds.dataset(str(out / "articles"), partitioning="hive").files
               if root_id in pq.read_table(f, columns=["article_id"]).column("article_id").to_pylist()]
    delete_rows(path, {root_id})

    # later, a third outlet's edited copy of the same story appears (the old items left the feed)
    record = next(r for r in load_records() if later.endswith(f"/{r['id']}.html"))
    paragraphs = [p for p in record["body"].split("\n") if p.strip()]
    paragraphs[0] = paragraphs[0] + " وفق ما أفادت وكالات الأنباء"
    third = server.url("/third/copy.html")
    page = ('<!DOCTYPE html><html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>'
            f'{escape(record["title"])}</title></head><body><article><h1>{escape(record["title"])}</h1>'
            + "".join(f"<p>{escape(p)}</p>" for p in paragraphs) + "</article></body></html>")
    server.route("/third/copy.html", Reply(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"}))
    published = datetime.fromisoformat(record["published"]) + timedelta(hours=2)
    server.route("/feed.xml", Reply(200, rss([(third, published)]), {"Content-Type": "application/rss+xml"}))
    assert main(argv) == 0
    assert "wrote 1 article rows" in capsys.readouterr().out

    rows = {r["url"]: r for r in ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()}
    assert earlier not in rows
    assert rows[third]["duplicate_of"] == copy_id  # the cluster's first surviving copy, not the deleted root
    glob = f"{out}/articles/**/*.parquet"
    dangling = duckdb.connect().execute(
        f"SELECT copy.url FROM read_parquet('{glob}') AS copy WHERE copy.duplicate_of IS NOT NULL AND "
        f"copy.duplicate_of NOT IN (SELECT article_id FROM read_parquet('{glob}')) ORDER BY copy.url").fetchall()
    assert dangling == [(later,)]  # only the row written before the deletion (rows are never rewritten)
