"""``akhbar report``: the sample site ingested on 127.0.0.1, then the HTML report read back.

The figures in the report's tables are checked against the Parquet files read independently
with pyarrow. A headless-Chromium screenshot check runs when ``chromium`` is installed.
"""
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date, datetime, timezone
from html.parser import HTMLParser

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from akhbar.pipelines.cli import main
from akhbar.sample.site import expected
from akhbar.schemas.arrow import ARTICLES_SCHEMA, article_row
from akhbar.transforms.sink import write_partition
from tests.conftest import ingest_sample
from tests.test_output import article


class Tables(HTMLParser):
    """Every <table id=…> as a list of rows of cell texts; also counts tags."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: Counter = Counter()
        self.attrs: list[tuple[str, dict]] = []
        self._table = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        self.attrs.append((tag, dict(attrs)))
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path) -> Tables:
    t = Tables()
    t.feed(path.read_text(encoding="utf-8"))
    return t


def as_dicts(table):
    header, *rows = table
    return [dict(zip(header, r)) for r in rows]


@pytest.fixture(scope="module")
def ingested(sample_site, tmp_path_factory):
    _, out = ingest_sample(sample_site, tmp_path_factory.mktemp("report"))
    return out, expected(sample_site.base_url)


def day_of(r):
    t = r["published_at"] or r["fetched_at"]
    return t.astimezone(timezone.utc).date()


def test_report_figures_match_the_parquet(ingested, tmp_path):
    out, truth = ingested
    html_file = tmp_path / "r.html"
    assert main(["report", str(out), "--out", str(html_file)]) == 0
    text = html_file.read_text(encoding="utf-8")
    doc = parse(html_file)
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()
    assert len(rows) == 15

    # self-contained: SVG charts inline, no script, no external resources
    assert doc.tags["svg"] == 3  # articles per day, topic share, dead letters
    for chart in ("chart-per-day", "chart-topic-share", "chart-dead-letters"):
        assert f'id="{chart}"' in text
    assert doc.tags["script"] == 0 and doc.tags["link"] == 0 and doc.tags["img"] == 0 and doc.tags["iframe"] == 0
    assert not [a for tag, a in doc.attrs if "src" in a]
    assert "@import" not in text and "url(" not in text

    summary = {r[0]: r[1] for r in doc.tables["summary"][1:]}
    assert summary["articles"] == "15" and summary["sources"] == "3"
    assert summary["NATO articles"] == str(sum("nato" in r["topics"] for r in rows))
    assert summary["near-duplicates (duplicate_of set)"] == "1" and summary["dead letters"] == "4"

    # articles per day per source
    want = Counter((str(day_of(r)), r["source_id"]) for r in rows)
    got = Counter()
    per_day = as_dicts(doc.tables["per-day-table"])
    for r in per_day[:-1]:
        for s in ("madina", "sahil", "wadi"):
            if r[s] != "0":
                got[(r["day"], s)] = int(r[s])
        assert int(r["total"]) == sum(int(r[s]) for s in ("madina", "sahil", "wadi"))
    assert got == want
    assert per_day[-1] == {"day": "total", "madina": "5", "sahil": "5", "wadi": "5", "total": "15"}
    bars = [a for tag, a in doc.attrs if tag == "rect" and "data-source" in a]
    assert Counter({(a["data-day"], a["data-source"]): int(a["data-n"]) for a in bars}) == want

    # topic share per day
    share = as_dicts(doc.tables["topic-share-table"])
    for r in share:
        day_rows = [x for x in rows if str(day_of(x)) == r["day"]]
        n = len(day_rows)
        nato = sum("nato" in x["topics"] for x in day_rows)
        ukr = sum("ukraine" in x["topics"] for x in day_rows)
        assert (int(r["articles"]), int(r["NATO"]), int(r["Ukraine"])) == (n, nato, ukr)
        assert float(r["NATO %"]) == round(100 * nato / n, 1)
    assert sum(int(r["articles"]) for r in share) == 15

    # the near-duplicate cluster: who carried the same story
    (later, first), = truth["near_duplicates"]
    by_url = {r["url"]: r for r in rows}
    (cluster,) = as_dicts(doc.tables["clusters-table"])
    assert cluster["copies"] == "2"
    assert cluster["sources"] == ", ".join(sorted({by_url[later]["source_id"], by_url[first]["source_id"]}))
    members = as_dicts(doc.tables["cluster-1"])
    assert [m["role"] for m in members] == ["first seen", "copy"]
    assert members[0]["source"] == by_url[first]["source_id"] and members[1]["source"] == by_url[later]["source_id"]
    assert members[0]["title"] == by_url[first]["title"]
    assert f'href="{by_url[later]["url"]}"' in text

    # dead letters by reason and source
    dead = ds.dataset(str(out / "dead_letter"), partitioning="hive").to_table().to_pylist()
    want_dead = Counter((f"{d['stage']}/{d['reason']}", d["source_id"]) for d in dead)
    assert sorted(r for _, r in want_dead) and sum(want_dead.values()) == len(truth["dead_letters"]) == 4
    table = as_dicts(doc.tables["dead-letters-table"])
    got_dead = Counter()
    for r in table[:-1]:
        for s, v in r.items():
            if s not in ("stage/reason", "total") and v != "0":
                got_dead[(r["stage/reason"], s)] = int(v)
    assert got_dead == want_dead
    assert table[-1]["total"] == "4"
    assert {r["stage/reason"].split("/")[1] for r in table[:-1]} == set(truth["dead_letters"].values())

    # feed health, from _state/feeds.json
    feeds = as_dicts(doc.tables["feeds-table"])
    from akhbar.transforms.feedstate import load_feed_states

    states = load_feed_states(str(out))
    assert sorted(f["feed"] for f in feeds) == sorted(states)
    failing = [f for f in feeds if f["state"].startswith("failing")]
    assert [f["feed"] for f in failing] == [u for u, s in states.items() if s.consecutive_failures]
    assert failing and all(f["last error"] == "http_500" and f["status"] == "500" for f in failing)
    assert all(f["state"] == "ok" for f in feeds if f not in failing)
    assert {f["given up"] for f in feeds} == {"0"}  # no page of the sample failed in 3 runs


def test_per_day_chart_stays_readable_with_many_sources(tmp_path):
    """32 sources: the chart names the 9 with most articles, sums the other 23 as one grey series,
    and its legend fits inside it; the table still has every source."""
    out = tmp_path / "out"
    days = [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]
    long_name = "outlet-30-with-a-name-too-long-for-the-legend"
    want: Counter = Counter()
    n = 0
    for i in range(32):
        source = long_name if i == 30 else f"outlet-{i:02d}"
        for k, day in enumerate(days):
            rows = []
            published = datetime(day.year, day.month, day.day, 9, tzinfo=timezone.utc)
            for _ in range(i + 1 + k):  # every source a different total
                n += 1
                rows.append(article_row(article(n, source_id=source, content_hash=f"h{n}", published_at=published)))
            write_partition(str(out / "articles" / f"dt={day}" / f"source={source}"), rows, ARTICLES_SCHEMA, f"r{k}",
                            "article_id")
            want[(str(day), source)] = len(rows)
    html_file = tmp_path / "r.html"
    assert main(["report", str(out), "--out", str(html_file)]) == 0
    text = html_file.read_text(encoding="utf-8")

    chart = ET.fromstring(re.search(r'<svg[^>]*id="chart-per-day".*?</svg>', text, re.S).group(0))
    ns = "{http://www.w3.org/2000/svg}"
    height = float(chart.get("height"))
    for el in chart.iter():
        if el.tag in (f"{ns}rect", f"{ns}text"):  # nothing drawn below the chart's bottom edge
            assert float(el.get("y")) + float(el.get("height", 0)) <= height, ET.tostring(el)[:200]
    ranked = sorted({s for _, s in want}, key=lambda s: -sum(v for (_, x), v in want.items() if x == s))
    top, rest = ranked[:9], ranked[9:]
    other = "other (23 sources)"
    legend = [g for g in chart.iter(f"{ns}g") if g.get("class") == "legend"]
    assert [g.get("data-name") for g in legend] == top + [other]
    fills = [g.find(f"{ns}rect").get("fill") for g in legend]
    assert len(set(fills)) == len(fills)  # no two series share a colour
    shown = {g.get("data-name"): g.find(f"{ns}text").text for g in legend}
    assert shown[long_name] != long_name and shown[long_name].endswith("…")
    assert {g.find(f"{ns}title").text for g in legend} == set(top) | {other}  # full names as tooltips

    bars = Counter()
    for r in chart.iter(f"{ns}rect"):
        if r.get("data-source"):
            bars[(r.get("data-day"), r.get("data-source"))] += int(r.get("data-n"))
    for day in days:
        for s in top:
            assert bars[(str(day), s)] == want[(str(day), s)]
        assert bars[(str(day), other)] == sum(want[(str(day), s)] for s in rest)
    assert sum(bars.values()) == sum(want.values()) == n
    assert "sums the other 23 as" in text

    per_day = as_dicts(parse(html_file).tables["per-day-table"])  # the table: every source, unchanged
    assert sorted(per_day[0]) == sorted(["day", "total", *ranked])
    assert {(r["day"], s): int(r[s]) for r in per_day[:-1] for s in ranked} == dict(want)


def test_report_period_filter(ingested, tmp_path):
    out, _ = ingested
    rows = ds.dataset(str(out / "articles"), partitioning="hive").to_table().to_pylist()
    days = sorted(day_of(r) for r in rows)
    since = days[len(days) // 2]
    html_file = tmp_path / "r.html"
    assert main(["report", str(out), "--since", str(since), "--out", str(html_file)]) == 0
    summary = {r[0]: r[1] for r in parse(html_file).tables["summary"][1:]}
    assert summary["articles"] == str(sum(d >= since for d in days))
    # a period with nothing in it still makes a report, saying so
    empty = tmp_path / "empty.html"
    assert main(["report", str(out), "--since", "2100-01-01", "--out", str(empty)]) == 0
    doc = parse(empty)
    assert {r[0]: r[1] for r in doc.tables["summary"][1:]}["articles"] == "0"
    assert "No articles in this period." in empty.read_text(encoding="utf-8")
    assert "feeds-table" in doc.tables  # feed health is not limited to the period
    assert main(["report", str(out), "--since", "2020-01-02", "--until", "2020-01-01", "--out", str(empty)]) == 2


def test_clusters_name_first_seen_copies_outside_the_period_and_those_not_stored(tmp_path):
    """The period holds the copies; their first-seen copy was written weeks earlier (read again for
    the listing, from its own partition) or is not stored at all. Days are UTC days, whatever zone
    a file's times are tagged with."""
    out = tmp_path / "out"

    def put(day, source, *arts, run="r1"):
        write_partition(str(out / "articles" / f"dt={day}" / f"source={source}"), [article_row(a) for a in arts],
                        ARTICLES_SCHEMA, run, "article_id")

    early = datetime(2026, 10, 1, 8, tzinfo=timezone.utc)
    late = datetime(2026, 11, 20, 23, 30, tzinfo=timezone.utc)  # 02:30 on the 21st in Riyadh
    put("2026-10-01", "alpha", article(1, source_id="alpha", title="الأصل", published_at=early))
    put("2026-11-20", "beta", article(2, source_id="beta", duplicate_of=f"{1:032x}", published_at=late),
        article(3, source_id="beta", duplicate_of=f"{99:032x}", published_at=late, topics=("ukraine",)))
    put("2026-11-20", "gamma", article(4, source_id="gamma", duplicate_of=f"{1:032x}", published_at=late))
    # a file whose times are tagged with another zone: its day is still the UTC day
    riyadh = tmp_path / "riyadh.parquet"
    put("2026-11-20", "delta", article(5, source_id="delta", published_at=late))
    (path,) = (out / "articles" / "dt=2026-11-20" / "source=delta").glob("*.parquet")
    t = pq.read_table(path)
    zoned = pa.timestamp("us", tz="Asia/Riyadh")
    for name in ("published_at", "fetched_at"):
        t = t.set_column(t.schema.get_field_index(name), pa.field(name, zoned), t.column(name).cast(zoned))
    pq.write_table(t, riyadh)
    os.replace(riyadh, path)

    html_file = tmp_path / "r.html"
    assert main(["report", str(out), "--since", "2026-11-01", "--out", str(html_file)]) == 0
    doc = parse(html_file)
    summary = {r[0]: r[1] for r in doc.tables["summary"][1:]}
    assert summary["articles"] == "4" and summary["near-duplicates (duplicate_of set)"] == "3"
    assert summary["NATO articles"] == "3" and summary["Ukraine articles"] == "1"
    assert [r["day"] for r in as_dicts(doc.tables["per-day-table"])] == ["2026-11-20", "total"]
    first, second = as_dicts(doc.tables["clusters-table"])
    assert (first["copies"], first["sources"], first["first-seen title"]) == ("3", "alpha, beta, gamma", "الأصل")
    assert [(m["role"], m["source"]) for m in as_dicts(doc.tables["cluster-1"])] == [
        ("first seen", "alpha"), ("copy", "beta"), ("copy", "gamma")]
    assert (second["copies"], second["sources"], second["first-seen title"]) == ("2", "beta", f"{99:032x}")
    assert "(not stored)" in as_dicts(doc.tables["cluster-2"])[0]["title"]


def test_a_period_counts_an_article_fetched_the_day_before_it_and_published_in_it(tmp_path, capsys):
    """Files in folders well before --since are read for their ids only; an article fetched late
    on the eve of the period and published the next morning sits in the eve's folder and counts."""
    out = tmp_path / "out"
    eve = datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc)
    for day, n, published in (("2026-09-01", 1, datetime(2026, 9, 1, 8, tzinfo=timezone.utc)),
                              ("2026-10-31", 2, datetime(2026, 11, 1, 10, tzinfo=timezone.utc))):
        write_partition(str(out / "articles" / f"dt={day}" / "source=ex"),
                        [article_row(article(n, fetched_at=eve if n == 2 else published, published_at=published))],
                        ARTICLES_SCHEMA, "r1", "article_id")
    html_file = tmp_path / "r.html"
    assert main(["report", str(out), "--since", "2026-11-01", "--out", str(html_file)]) == 0
    doc = parse(html_file)
    assert {r[0]: r[1] for r in doc.tables["summary"][1:]}["articles"] == "1"
    assert [r["day"] for r in as_dicts(doc.tables["per-day-table"])] == ["2026-11-01", "total"]


def test_report_of_nothing_is_refused(tmp_path, capsys):
    assert main(["report", str(tmp_path / "none"), "--out", str(tmp_path / "r.html")]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_page_text_is_escaped(ingested, tmp_path):
    """Titles and URLs come from the web: markup in them is shown as text, never run."""
    out, _ = ingested
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    for path in (copy / "articles").rglob("*.parquet"):  # every title, so the cluster shows one
        t = pq.read_table(path)
        t = t.set_column(t.schema.get_field_index("title"), "title", [[hostile] * t.num_rows])
        pq.write_table(t, path)
    html_file = tmp_path / "r.html"
    assert main(["report", str(copy), "--out", str(html_file)]) == 0
    doc = parse(html_file)
    assert doc.tags["script"] == 0 and doc.tags["img"] == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_file.read_text(encoding="utf-8")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(ingested, tmp_path):
    """The report opens offline in a real browser: a screenshot is made and is not blank."""
    out, _ = ingested
    html_file = tmp_path / "r.html"
    assert main(["report", str(out), "--out", str(html_file)]) == 0
    shot = tmp_path / "shot.png"
    env = dict(os.environ, HOME=str(tmp_path))
    # no background networking: Chromium must not try to reach any host but the local file
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-default-apps", "--disable-extensions",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1100,2400",
                    html_file.as_uri()], env=env, capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000
    Image = pytest.importorskip("PIL.Image")
    img = Image.open(shot).convert("RGB").resize((110, 240))
    colors = img.getcolors(maxcolors=110 * 240)
    assert len(colors) > 20  # charts and text drawn, not one blank colour
