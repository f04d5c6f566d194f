"""``akhbar report OUTPUT``: one self-contained HTML file about an output folder.

Everything is read from the committed files (``articles/``, ``dead_letter/``,
``_state/feeds.json``) and drawn here: the charts are inline SVG built by the small functions
below, there is no JavaScript and nothing is loaded from the network, so the file can be mailed,
archived or opened offline.

Days: an article counts on the UTC day it was *published* (``published_at``), or the day it was
fetched when the publication time is unknown; a dead letter counts on the UTC day of its ``time``.
``--since`` / ``--until`` (inclusive) select on those days.
"""
from __future__ import annotations

import html
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc

from akhbar.schemas.arrow import ARTICLES_SCHEMA
from akhbar.transforms import store
from akhbar.transforms.state import GIVE_UP_AFTER_HOURS, folder_day

ARTICLE_COLUMNS = ["article_id", "url", "source_id", "title", "published_at", "fetched_at", "topics", "duplicate_of"]
DEAD_COLUMNS = ["source_id", "stage", "reason", "time"]
TOP_CLUSTERS = 20
GIVEN_UP_WINDOW_DAYS = 30  # akhbar run's default --dedup-window-days
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
TOPIC_COLORS = {"nato": "#1f4e9c", "ukraine": "#e0a800"}
# the per-day chart names this many sources (those with most articles in the period) and sums the
# rest as one "other" series: more would not fit its legend, and colours would repeat
CHART_SOURCES = len(PALETTE) - 1
OTHER_COLOR = "#c7c7c7"
LEGEND_ROW = 16
LEGEND_CHARS = 18  # longer names are cut in the legend (the full name is its tooltip)


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _read(path: str, columns: list[str]) -> pa.Table | None:
    """Those columns of one committed file; None for a compaction placeholder (zero rows, which
    may lack columns)."""
    try:
        return store.read_table(path, columns)
    except Exception:  # noqa: BLE001 - a placeholder, or a damaged file: raised again unless empty
        if store.read_table(path).num_rows:
            raise
        return None


def _utc_days(column) -> pa.ChunkedArray:
    """The UTC day of each time (null stays null), whatever time zone the column is tagged with."""
    return pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.date32())


def _in_window(table: pa.Table, days, since: date | None, until: date | None) -> pa.Table:
    """The rows of ``table`` whose day is within ``since``..``until``; a null day only when
    neither is given."""
    for bound, within in ((since, pc.greater_equal), (until, pc.less_equal)):
        if bound is not None:  # a null day compares to null, which the filter drops
            keep = within(days, pa.scalar(bound, pa.date32()))
            table, days = table.filter(keep), days.filter(keep)
    return table


def _has_topics(topics: pa.ChunkedArray, *names: str) -> list[pa.ChunkedArray]:
    """Per name, per row of a ``list<string>`` column: whether the name is among its values (done
    on the values joined once by a separator no topic has; a numpy mask would make pyarrow import
    pandas)."""
    joined = pc.binary_join(topics, "\x1f")
    return [pc.fill_null(pc.match_substring_regex(joined, f"(^|\x1f){re.escape(name)}(\x1f|$)"), False)
            for name in names]


# the columns of the near-duplicates kept for the clusters, times as UTC whatever a file's zone
COPY_SCHEMA = pa.schema([pa.field(name, pa.timestamp("us", tz="UTC")) if name.endswith("_at")
                         else ARTICLES_SCHEMA.field(name) for name in ARTICLE_COLUMNS])
COMBINE_EVERY = 256  # files
WINDOW_SCHEMA = pa.schema([("day", pa.date32()), ("source_id", pa.string()), ("nato", pa.bool_()),
                           ("ukraine", pa.bool_()), ("near", pa.bool_())])


# A row's day is its publication day, else its fetch day. A file's dt= folder is its rows' fetch
# day, and a publication time is kept only up to a day after the fetch (dates.plausible): a file
# in a folder more than this many days before the period holds none of the period's rows.
PUBLISHED_AFTER_FETCH_DAYS = 7  # well over that day, for data written otherwise


def _articles_of_file(path: str, since: date | None, until: date | None):
    """What the report keeps of one articles file: its window's rows as (day, source, topic flags,
    near-duplicate flag); the ids and sources of all its rows; the rows of its window that are
    near-duplicates (the clusters are made of them). A file in a folder before the period is read
    for its ids and sources only."""
    day = folder_day(path)
    before = since is not None and day is not None and (since - day).days > PUBLISHED_AFTER_FETCH_DAYS
    window, copies = WINDOW_SCHEMA.empty_table(), COPY_SCHEMA.empty_table()
    t = _read(path, ["article_id", "source_id"] if before else ARTICLE_COLUMNS)
    if t is None:
        return window, [], [], copies
    if not before:
        days = pc.coalesce(_utc_days(t.column("published_at")), _utc_days(t.column("fetched_at")))
        w = _in_window(t.append_column("day", days), days, since, until)
        near = pc.is_valid(w.column("duplicate_of"))
        window = pa.table([w.column("day"), w.column("source_id"), *_has_topics(w.column("topics"), "nato", "ukraine"),
                           near], schema=WINDOW_SCHEMA)
        copies = w.filter(near).select(ARTICLE_COLUMNS).cast(COPY_SCHEMA)
    names = pc.unique(t.column("source_id"))
    return window, t.column("article_id").to_pylist(), (names[0].as_py() if len(names) == 1 else
                                                        t.column("source_id").to_pylist()), copies


def _dead_of_file(path: str, since: date | None, until: date | None) -> Counter:
    """(stage/reason, source) → dead letters of one file in the window (a file in a dt= folder
    outside it, the day of its rows, is not read)."""
    day = folder_day(path)
    if day is not None and ((since is not None and day < since) or (until is not None and day > until)):
        return Counter()
    t = _read(path, DEAD_COLUMNS)
    if t is None:
        return Counter()
    t = _in_window(t, _utc_days(t.column("time")), since, until)
    return Counter((f"{stage}/{reason}", source or "(none)") for stage, reason, source in
                   zip(*(t.column(c).to_pylist() for c in ("stage", "reason", "source_id"))))


@dataclass
class ReportData:
    """The figures of a report: counts, and the rows of the clusters it lists, never every row."""

    output: str
    since: date | None
    until: date | None
    per_day: dict[tuple[date, str], int] = field(default_factory=dict)  # articles per (day, source)
    share: list[tuple[date, int, int, int]] = field(default_factory=list)  # (day, articles, nato, ukraine)
    totals: dict[str, int] = field(default_factory=dict)  # articles, sources, nato, ukraine, near
    clusters: list[dict] = field(default_factory=list)  # the largest near-duplicate groups, see _clusters
    dead: dict[tuple[str, str], int] = field(default_factory=dict)  # (stage/reason, source) -> dead letters
    feeds: list = field(default_factory=list)
    given_up: dict[str, int] | None = None  # pages given up on per feed URL (None: could not be counted)
    given_up_rule: tuple[float, float] = (GIVEN_UP_WINDOW_DAYS, GIVE_UP_AFTER_HOURS)  # (window days, hours)


def load(output: str, since: date | None = None, until: date | None = None, *,
         window_days: float = GIVEN_UP_WINDOW_DAYS, give_up_after_hours: float = GIVE_UP_AFTER_HOURS,
         top: int = TOP_CLUSTERS) -> ReportData:
    """What the report shows; ``window_days`` and ``give_up_after_hours``: the runs'
    ``--dedup-window-days`` and ``--give-up-after``, for the pages given up on.

    Each file is read once (each folder as one state, whatever compactions run meanwhile; on gs://
    several files at once) and boiled down as it is read: what is held is a few bytes per article
    of the period, the ids of the stored articles (as a run holds them) and the near-duplicates
    of the period; the first-seen copies of the listed clusters are read again at the end."""
    from akhbar.transforms.feedstate import load_feed_states
    from akhbar.transforms.state import PageFailures

    root = store.join(output, "articles")
    windows, copies, files, stored = [WINDOW_SCHEMA.empty_table()], [COPY_SCHEMA.empty_table()], [], set()
    for path, (window, ids, names, file_copies) in store.map_committed(
            lambda p, _: _articles_of_file(p, since, until), root):
        windows.append(window)
        copies.append(file_copies)
        stored.update(ids)
        files.append((path, ids, names))
        if len(windows) >= COMBINE_EVERY:  # one table of few big buffers, not thousands of small ones
            windows, copies = [pa.concat_tables(windows).combine_chunks()], [pa.concat_tables(copies).combine_chunks()]
    window = pa.concat_tables(windows)
    dead: Counter = Counter()
    dead_root = store.join(output, "dead_letter")
    for _, counts in store.map_committed(lambda p, _: _dead_of_file(p, since, until), dead_root):
        dead.update(counts)
    feeds = sorted(load_feed_states(output).values(), key=lambda s: (s.source_id, s.feed_url))
    try:
        given_up = PageFailures(output, window_days, give_up_after_hours, write_log=False).given_up_by_feed(stored)
    except (OSError, ValueError):  # the rest of the report still stands
        given_up = None

    # "nato" is never null: its count is the number of rows
    by_source = window.group_by(["day", "source_id"]).aggregate([("nato", "count")])
    per_day = {(r["day"], r["source_id"]): r["nato_count"] for r in by_source.to_pylist()}
    by_day = window.group_by("day").aggregate([("nato", "count"), ("nato", "sum"), ("ukraine", "sum")])
    share = sorted((r["day"], r["nato_count"], r["nato_sum"], r["ukraine_sum"]) for r in by_day.to_pylist()
                   if r["day"] is not None)
    totals = {"articles": window.num_rows, "sources": len(pc.unique(window.column("source_id"))),
              **{flag: int(pc.sum(window.column(flag)).as_py() or 0) for flag in ("nato", "ukraine", "near")}}
    copies = pa.concat_tables(copies)
    wanted = set(pc.unique(copies.column("duplicate_of")).to_pylist())
    originals = {}  # first-seen id -> (its source, its file)
    for path, ids, names in files if wanted else ():
        for i, aid in enumerate(ids):
            if aid in wanted:
                originals[aid] = (names if isinstance(names, str) else names[i], path)
    clusters = _clusters(copies, originals, top)
    return ReportData(output, since, until, per_day, share, totals, clusters, dict(dead), feeds, given_up,
                      (window_days, give_up_after_hours))


def _clusters(copies: pa.Table, originals: dict[str, tuple[str, str]], top: int) -> list[dict]:
    """Near-duplicate groups, largest first: the first-seen copy (``originals``: its source and
    file, when stored) and every article of the period whose ``duplicate_of`` names it. The rows of
    the ``top`` groups' first-seen copies are read from their partition folders."""
    groups = copies.group_by("duplicate_of").aggregate([("source_id", "count"), ("source_id", "distinct")])
    ranked = []
    for root_id, n, copy_sources in zip(*(groups.column(c).to_pylist() for c in (
            "duplicate_of", "source_id_count", "source_id_distinct"))):
        found = originals.get(root_id)
        names = set(copy_sources) | ({found[0]} if found else set())
        ranked.append((-(n + 1), -len(names), root_id, sorted(names)))
    ranked.sort()
    chosen = ranked[:top]
    members: dict[str, list[dict]] = defaultdict(list)
    for r in copies.filter(pc.is_in(copies.column("duplicate_of"), pa.array([c[2] for c in chosen], pa.string()))
                           ).to_pylist():
        members[r["duplicate_of"]].append(r)
    wanted: dict[str, set[str]] = defaultdict(set)  # partition folder -> first-seen ids in it
    for _, _, root_id, _ in chosen:
        if root_id in originals:
            wanted[originals[root_id][1].rsplit("/", 1)[0]].add(root_id)
    rows_of: dict[str, dict] = {}
    for folder, ids in wanted.items():
        def pick(path: str, _ident, ids=ids) -> list[dict]:
            t = _read(path, ARTICLE_COLUMNS)
            return [] if t is None else t.filter(pc.is_in(t.column("article_id"), pa.array(sorted(ids)))).to_pylist()

        for _, rows in store.map_committed(pick, folder):
            rows_of.update((r["article_id"], r) for r in rows)
    out = []
    for size, _, root_id, names in chosen:
        root = rows_of.get(root_id)
        rows = sorted(members[root_id], key=lambda r: r.get("published_at") or r["fetched_at"])
        out.append({"original_id": root_id, "original": root, "rows": ([root] if root else []) + rows,
                    "size": -size, "sources": names})
    return out


# --- figures ---------------------------------------------------------------------------------------

def per_day_per_source(counts: dict[tuple[date, str], int]) -> tuple[list[date], list[str]]:
    days = sorted({d for d, _ in counts if d is not None})
    sources = sorted({s for _, s in counts})
    return days, sources


def chart_series(sources: list[str], counts: dict[tuple[date, str], int], top: int = CHART_SOURCES
                 ) -> tuple[list[str], dict[tuple[date, str], int], str | None]:
    """The per-day chart's series and counts: every source when at most ``top`` + 1, else the
    ``top`` sources with most articles (ties by name) and one series, returned as the third
    value, summing all the others. Its label has a space and parentheses, which no source id has."""
    if len(sources) <= top + 1:
        return sources, counts, None
    totals: Counter = Counter()
    for (_, s), n in counts.items():
        totals[s] += n
    keep = sorted(sources, key=lambda s: (-totals[s], s))[:top]
    other = f"other ({len(sources) - top} sources)"
    named = set(keep)
    grouped: Counter = Counter()
    for (d, s), n in counts.items():
        grouped[(d, s if s in named else other)] += n
    return keep + [other], dict(grouped), other


def dead_by_reason_source(counts: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    reasons = sorted({k for k, _ in counts}, key=lambda k: (-sum(v for (a, _), v in counts.items() if a == k), k))
    sources = sorted({s for _, s in counts})
    return reasons, sources


# --- SVG ---------------------------------------------------------------------------------------------

def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def svg_stacked_bars(days: list[date], series: list[str], counts: dict[tuple[date, str], int],
                     width: int = 760, height: int = 260, other: str | None = None) -> str:
    """Bars per day stacked by series; ``other`` names the series drawn grey (the sources summed)."""
    left, right, top, bottom = 44, 150, 12, 40
    height = max(height, top + LEGEND_ROW * len(series) + bottom)  # the legend always fits
    colors = [OTHER_COLOR if s == other else _color(j) for j, s in enumerate(series)]
    pw, ph = width - left - right, height - top - bottom
    totals = [sum(counts.get((d, s), 0) for s in series) for d in days]
    vmax = max(totals + [1])
    step = pw / max(len(days), 1)
    bw = max(min(step * 0.8, 60), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-per-day" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="articles per day per source">']
    parts += _y_axis(left, top, pw, ph, vmax)
    for i, d in enumerate(days):
        x = left + i * step + (step - bw) / 2
        y = top + ph
        for j, s in enumerate(series):
            n = counts.get((d, s), 0)
            if not n:
                continue
            h = ph * n / vmax
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{colors[j]}" '
                         f'data-day="{d}" data-source="{_e(s)}" data-n="{n}"><title>{d} {_e(s)}: {n}</title></rect>')
        if len(days) <= 16 or i % max(len(days) // 12, 1) == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">'
                         f'{d.strftime("%m-%d")}</text>')
    parts += _legend(series, colors, left + pw + 12, top)
    parts.append("</svg>")
    return "".join(parts)


def svg_share_lines(rows: list[tuple[date, int, int, int]], width: int = 760, height: int = 240) -> str:
    left, right, top, bottom = 44, 150, 12, 40
    pw, ph = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-topic-share" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="NATO and Ukraine share per day">']
    for k in range(5):
        y = top + ph - ph * k / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{25 * k}%</text>')
    n = len(rows)

    def xy(i: int, frac: float) -> tuple[float, float]:
        x = left + (pw / 2 if n == 1 else pw * i / (n - 1))
        return x, top + ph - ph * frac

    for idx, (topic, col) in enumerate((("nato", 2), ("ukraine", 3))):
        pts = [xy(i, r[col] / r[1]) for i, r in enumerate(rows) if r[1]]
        color = TOPIC_COLORS[topic]
        if len(pts) > 1:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        for (x, y), r in zip(pts, [r for r in rows if r[1]]):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}" data-topic="{topic}" '
                         f'data-day="{r[0]}" data-share="{r[col] / r[1]:.4f}"><title>{r[0]} {topic}: '
                         f'{r[col]} of {r[1]} ({100 * r[col] / r[1]:.0f}%)</title></circle>')
    for i, r in enumerate(rows):
        if n <= 16 or i % max(n // 12, 1) == 0:
            x, _ = xy(i, 0)
            parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">'
                         f'{r[0].strftime("%m-%d")}</text>')
    parts += _legend(["NATO", "Ukraine"], [TOPIC_COLORS["nato"], TOPIC_COLORS["ukraine"]], left + pw + 12, top)
    parts.append("</svg>")
    return "".join(parts)


def svg_hbars(labels: list[str], values: list[int], chart_id: str, width: int = 760) -> str:
    row, left, right = 22, 260, 60
    height = row * max(len(labels), 1) + 10
    pw = width - left - right
    vmax = max(values + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, v) in enumerate(zip(labels, values)):
        y = 5 + i * row
        w = pw * v / vmax
        parts.append(f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_e(label)}</text>'
                     f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="#c0392b" '
                     f'data-label="{_e(label)}" data-n="{v}"><title>{_e(label)}: {v}</title></rect>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="11">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _y_axis(left: int, top: int, pw: float, ph: float, vmax: int) -> list[str]:
    out = []
    ticks = 4
    for k in range(ticks + 1):
        v = vmax * k / ticks
        y = top + ph - ph * k / ticks
        label = f"{v:.0f}" if vmax >= ticks else f"{v:.1f}"
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{label}</text>')
    return out


def _legend(names: list[str], colors: list[str], x: float, y: float) -> list[str]:
    def shown(name: str) -> str:
        return name if len(name) <= LEGEND_CHARS else name[:LEGEND_CHARS - 1] + "…"

    return [f'<g class="legend" data-name="{_e(n)}"><title>{_e(n)}</title>'
            f'<rect x="{x}" y="{y + LEGEND_ROW * i}" width="10" height="10" fill="{c}"/>'
            f'<text x="{x + 14}" y="{y + 9 + LEGEND_ROW * i}" font-size="11">{_e(shown(n))}</text></g>'
            for i, (n, c) in enumerate(zip(names, colors))]


# --- HTML --------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans Arabic",sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px} h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ccc;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#f4f4f4}
.ar{direction:rtl;unicode-bidi:plaintext} .bad{color:#b00020;font-weight:600} .ok{color:#1b7f3b}
.muted{color:#777} .cluster{margin:10px 0 18px}
"""


def _table(table_id: str, header: list[str], rows: list[list], numeric_from: int = 1) -> str:
    out = [f'<table id="{table_id}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(
            f'<td class="n">{_e(c)}</td>' if i >= numeric_from and isinstance(c, (int, float)) else f"<td>{c}</td>"
            for i, c in enumerate(r)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _ts(t: datetime | None) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if t else "-"


def render_html(data: ReportData, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    window = f"{data.since or 'start'} – {data.until or 'end'}"
    body: list[str] = [f"<h1>akhbar report</h1><p>Output <code>{_e(data.output)}</code>, days {_e(window)} "
                       f"(articles by publication day, fetch day when unknown; dead letters by failure day). "
                       f"Made {_ts(now)} UTC.</p>"]
    totals = data.totals
    body.append(_table("summary", ["what", "count"], [
        ["articles", totals.get("articles", 0)], ["sources", totals.get("sources", 0)],
        ["NATO articles", totals.get("nato", 0)], ["Ukraine articles", totals.get("ukraine", 0)],
        ["near-duplicates (duplicate_of set)", totals.get("near", 0)], ["dead letters", sum(data.dead.values())],
        ["feeds with state", len(data.feeds)]]))

    # articles per day per source
    body.append('<section id="per-day"><h2>Articles per day per source</h2>')
    counts = data.per_day
    days, sources = per_day_per_source(counts)
    if days:
        series, grouped, other = chart_series(sources, counts)
        body.append(svg_stacked_bars(days, series, grouped, other=other))
        if other:
            body.append(f'<p class="muted">The chart names the {len(series) - 1} sources with most articles in '
                        f'this period and sums the other {len(sources) - len(series) + 1} as '
                        f'“{_e(other)}”; the table lists every source.</p>')
        rows = [[str(d)] + [counts.get((d, s), 0) for s in sources] + [sum(counts.get((d, s), 0) for s in sources)]
                for d in days]
        rows.append(["total"] + [sum(counts.get((d, s), 0) for d in days) for s in sources]
                    + [totals.get("articles", 0)])
        body.append(_table("per-day-table", ["day"] + [_e(s) for s in sources] + ["total"], rows))
    else:
        body.append('<p class="muted">No articles in this period.</p>')
    body.append("</section>")

    # topic share
    body.append('<section id="topics"><h2>NATO / Ukraine share over time</h2>')
    share = data.share
    if share:
        body.append(svg_share_lines(share))
        body.append(_table("topic-share-table", ["day", "articles", "NATO", "NATO %", "Ukraine", "Ukraine %"],
                           [[str(d), n, a, round(100 * a / n, 1), u, round(100 * u / n, 1)] for d, n, a, u in share]))
    else:
        body.append('<p class="muted">No articles in this period.</p>')
    body.append("</section>")

    # near-duplicate clusters
    body.append(f'<section id="clusters"><h2>Top near-duplicate clusters (who carried the same story)</h2>'
                f'<p class="muted">Grouped by <code>duplicate_of</code>: the first-seen copy and every later copy; '
                f'largest first, at most {TOP_CLUSTERS}.</p>')
    cl = data.clusters
    if cl:
        body.append(_table("clusters-table", ["#", "copies", "sources", "first-seen title"], [
            [str(i + 1), c["size"], _e(", ".join(c["sources"])),
             f'<span class="ar">{_e((c["original"] or {}).get("title") or c["original_id"])}</span>']
            for i, c in enumerate(cl)], numeric_from=1))
        for i, c in enumerate(cl):
            rows = []
            for r in c["rows"]:
                role = "first seen" if r["article_id"] == c["original_id"] else "copy"
                rows.append([role, _e(r["source_id"]), _e(_ts(r.get("published_at"))),
                             f'<a class="ar" href="{_e(r["url"])}">{_e(r.get("title") or r["url"])}</a>'])
            if c["original"] is None:
                rows.insert(0, ["first seen", "-", "-", f'<span class="muted">{_e(c["original_id"])} (not stored)</span>'])
            body.append(f'<div class="cluster"><b>Cluster {i + 1}</b>'
                        + _table(f"cluster-{i + 1}", ["role", "source", "published (UTC)", "title"], rows) + "</div>")
    else:
        body.append('<p class="muted">No near-duplicates in this period.</p>')
    body.append("</section>")

    # dead letters
    body.append('<section id="dead-letters"><h2>Dead letters by reason and source</h2>')
    dcounts = data.dead
    reasons, dsources = dead_by_reason_source(dcounts)
    if reasons:
        totals = [sum(dcounts.get((k, s), 0) for s in dsources) for k in reasons]
        body.append(svg_hbars(reasons, totals, "chart-dead-letters"))
        rows = [[_e(k)] + [dcounts.get((k, s), 0) for s in dsources] + [t] for k, t in zip(reasons, totals)]
        rows.append(["total"] + [sum(dcounts.get((k, s), 0) for k in reasons) for s in dsources]
                    + [sum(dcounts.values())])
        body.append(_table("dead-letters-table", ["stage/reason"] + [_e(s) for s in dsources] + ["total"], rows))
        body.append('<p class="muted">Reason codes: docs/dead-letters.md. Failed pages can be retried with '
                    '<code>akhbar replay</code>.</p>')
    else:
        body.append('<p class="muted">No dead letters in this period.</p>')
    body.append("</section>")

    # feed health
    body.append('<section id="feeds"><h2>Feed health</h2><p class="muted">From <code>_state/feeds.json</code> '
                '(all runs, not limited to the period). <em>Given up</em>: the feed\'s pages that polls no longer '
                f'fetch, having failed for a lasting reason in 3 runs of the last {data.given_up_rule[0]:g} days, '
                f'at least {data.given_up_rule[1]:g} hours apart (<code>akhbar replay</code> still takes them).</p>')
    if data.feeds:
        from akhbar.transforms.feedstate import health_status

        rows = []
        for s in data.feeds:
            status, until = health_status(s, now)
            backed_off = f", backed off until {_ts(until)} UTC" if status == "backoff" else ""
            state = (f'<span class="bad">failing ({s.consecutive_failures}×{_e(backed_off)})</span>'
                     if status != "ok" else '<span class="ok">ok</span>')
            rows.append([_e(s.source_id), f"<code>{_e(s.feed_url)}</code>", state, _e(_ts(s.last_success)),
                         _e(_ts(s.last_attempt)), _e(s.last_status if s.last_status is not None else "-"),
                         _e(s.last_error or "-"), s.polls, s.not_modified, s.entries,
                         "?" if data.given_up is None else data.given_up.get(s.feed_url, 0)])
        body.append(_table("feeds-table", ["source", "feed", "state", "last success", "last attempt", "status",
                                           "last error", "polls", "304s", "entries", "given up"], rows,
                           numeric_from=7))
    else:
        body.append('<p class="muted">No feed state yet (no run has finished here).</p>')
    body.append("</section>")
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>akhbar report — {_e(data.output)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def build_report(output: str, since: date | None = None, until: date | None = None,
                 now: datetime | None = None, **given_up_rule) -> str:
    """The HTML report; ``given_up_rule``: :func:`load`'s ``window_days`` and ``give_up_after_hours``."""
    return render_html(load(output, since, until, **given_up_rule), now)


def cmd_report(args) -> int:
    try:
        return _report(args)
    except OSError as e:  # storage: no credentials, no such bucket, not allowed
        print(f"akhbar: report: {e}", file=sys.stderr)
        return 1


def _report(args) -> int:
    if not (store.list_files(store.join(args.output, "articles")) or store.list_files(store.join(args.output, "dead_letter"))
            or store.exists(store.join(args.output, "_state", "feeds.json"))):
        print(f"akhbar: nothing to report under {args.output} (no articles, dead letters or feed state)", file=sys.stderr)
        return 2
    if args.since and args.until and args.since > args.until:
        print("akhbar: --since is after --until", file=sys.stderr)
        return 2
    from akhbar.transforms.feedstate import CorruptFeedState

    try:
        text = build_report(args.output, args.since, args.until, window_days=args.dedup_window_days,
                            give_up_after_hours=args.give_up_after)
    except CorruptFeedState as e:
        print(f"akhbar: {e} (the next `akhbar run` moves it aside and starts over)", file=sys.stderr)
        return 2
    except store.UnreadableFile as e:
        print(f"akhbar: report: {e}", file=sys.stderr)
        return 1
    store.write_atomic(args.out, text.encode("utf-8"))
    print(f"akhbar: report written to {args.out}")
    return 0
