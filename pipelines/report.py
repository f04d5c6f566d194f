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
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from akhbar.transforms import store
from akhbar.transforms.state import GIVE_UP_AFTER_HOURS

ARTICLE_COLUMNS = ["article_id", "url", "source_id", "title", "published_at", "fetched_at", "topics", "duplicate_of"]
DEAD_COLUMNS = ["url", "source_id", "stage", "reason", "time"]
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


def _read_rows(root: str, columns: list[str]) -> list[dict]:
    def read(path: str, _ident) -> list[dict]:
        try:
            return store.read_table(path, columns).to_pylist()
        except Exception:  # noqa: BLE001 - a compaction placeholder (zero rows) may lack columns
            if store.read_table(path).num_rows:
                raise
            return []

    rows: list[dict] = []
    # each folder read as one state, whatever compactions run meanwhile; gs://: several files at once
    for _, part in store.map_committed(read, root):
        rows.extend(part)
    return rows


def _day_of(ts: datetime | None) -> date | None:
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.date()


def article_day(row: dict) -> date | None:
    return _day_of(row.get("published_at")) or _day_of(row.get("fetched_at"))


def _in_window(day: date | None, since: date | None, until: date | None) -> bool:
    if day is None:
        return since is None and until is None
    return (since is None or day >= since) and (until is None or day <= until)


@dataclass
class ReportData:
    output: str
    since: date | None
    until: date | None
    articles: list[dict]
    all_articles: dict[str, dict]  # article_id -> row, whatever the window (for cluster originals)
    dead: list[dict]
    feeds: list = field(default_factory=list)
    given_up: dict[str, int] | None = None  # pages given up on per feed URL (None: could not be counted)
    given_up_rule: tuple[float, float] = (GIVEN_UP_WINDOW_DAYS, GIVE_UP_AFTER_HOURS)  # (window days, hours)


def load(output: str, since: date | None = None, until: date | None = None, *,
         window_days: float = GIVEN_UP_WINDOW_DAYS, give_up_after_hours: float = GIVE_UP_AFTER_HOURS) -> ReportData:
    """What the report shows; ``window_days`` and ``give_up_after_hours``: the runs'
    ``--dedup-window-days`` and ``--give-up-after``, for the pages given up on."""
    from akhbar.transforms.feedstate import load_feed_states

    everything = _read_rows(store.join(output, "articles"), ARTICLE_COLUMNS)
    arts = [r for r in everything if _in_window(article_day(r), since, until)]
    dead = [r for r in _read_rows(store.join(output, "dead_letter"), DEAD_COLUMNS)
            if _in_window(_day_of(r.get("time")), since, until)]
    from akhbar.transforms.state import PageFailures

    feeds = sorted(load_feed_states(output).values(), key=lambda s: (s.source_id, s.feed_url))
    stored = {r["article_id"]: r for r in everything}
    try:
        given_up = PageFailures(output, window_days, give_up_after_hours, write_log=False).given_up_by_feed(stored)
    except (OSError, ValueError):  # the rest of the report still stands
        given_up = None
    return ReportData(output, since, until, arts, stored, dead, feeds, given_up, (window_days, give_up_after_hours))


# --- figures ---------------------------------------------------------------------------------------

def per_day_per_source(arts: list[dict]) -> tuple[list[date], list[str], dict[tuple[date, str], int]]:
    counts: Counter = Counter()
    for r in arts:
        counts[(article_day(r), r["source_id"])] += 1
    days = sorted({d for d, _ in counts if d is not None})
    sources = sorted({s for _, s in counts})
    return days, sources, dict(counts)


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


def topic_share(arts: list[dict]) -> list[tuple[date, int, int, int]]:
    """(day, articles, nato, ukraine) per day."""
    per: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in arts:
        d = article_day(r)
        if d is None:
            continue
        topics = set(r.get("topics") or [])
        per[d][0] += 1
        per[d][1] += "nato" in topics
        per[d][2] += "ukraine" in topics
    return [(d, *per[d]) for d in sorted(per)]


def clusters(data: ReportData, top: int = TOP_CLUSTERS) -> list[dict]:
    """Near-duplicate groups: the first-seen copy and every article whose ``duplicate_of`` names it."""
    members: dict[str, list[dict]] = defaultdict(list)
    for r in data.articles:
        if r.get("duplicate_of"):
            members[r["duplicate_of"]].append(r)
    out = []
    for root_id, copies in members.items():
        root = data.all_articles.get(root_id)
        rows = ([root] if root else []) + sorted(copies, key=lambda r: (r.get("published_at") or r["fetched_at"]))
        out.append({"original_id": root_id, "original": root, "rows": rows,
                    "size": len(copies) + 1, "sources": sorted({r["source_id"] for r in rows})})
    out.sort(key=lambda c: (-c["size"], -len(c["sources"]), c["original_id"]))
    return out[:top]


def dead_by_reason_source(dead: list[dict]) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    counts: Counter = Counter((f"{r['stage']}/{r['reason']}", r.get("source_id") or "(none)") for r in dead)
    reasons = sorted({k for k, _ in counts}, key=lambda k: (-sum(v for (a, _), v in counts.items() if a == k), k))
    sources = sorted({s for _, s in counts})
    return reasons, sources, dict(counts)


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
    arts = data.articles
    window = f"{data.since or 'start'} – {data.until or 'end'}"
    body: list[str] = [f"<h1>akhbar report</h1><p>Output <code>{_e(data.output)}</code>, days {_e(window)} "
                       f"(articles by publication day, fetch day when unknown; dead letters by failure day). "
                       f"Made {_ts(now)} UTC.</p>"]
    near = sum(1 for r in arts if r.get("duplicate_of"))
    nato = sum(1 for r in arts if "nato" in (r.get("topics") or []))
    ukr = sum(1 for r in arts if "ukraine" in (r.get("topics") or []))
    body.append(_table("summary", ["what", "count"], [
        ["articles", len(arts)], ["sources", len({r["source_id"] for r in arts})],
        ["NATO articles", nato], ["Ukraine articles", ukr],
        ["near-duplicates (duplicate_of set)", near], ["dead letters", len(data.dead)],
        ["feeds with state", len(data.feeds)]]))

    # articles per day per source
    body.append('<section id="per-day"><h2>Articles per day per source</h2>')
    days, sources, counts = per_day_per_source(arts)
    if days:
        series, grouped, other = chart_series(sources, counts)
        body.append(svg_stacked_bars(days, series, grouped, other=other))
        if other:
            body.append(f'<p class="muted">The chart names the {len(series) - 1} sources with most articles in '
                        f'this period and sums the other {len(sources) - len(series) + 1} as '
                        f'“{_e(other)}”; the table lists every source.</p>')
        rows = [[str(d)] + [counts.get((d, s), 0) for s in sources] + [sum(counts.get((d, s), 0) for s in sources)]
                for d in days]
        rows.append(["total"] + [sum(counts.get((d, s), 0) for d in days) for s in sources] + [len(arts)])
        body.append(_table("per-day-table", ["day"] + [_e(s) for s in sources] + ["total"], rows))
    else:
        body.append('<p class="muted">No articles in this period.</p>')
    body.append("</section>")

    # topic share
    body.append('<section id="topics"><h2>NATO / Ukraine share over time</h2>')
    share = topic_share(arts)
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
    cl = clusters(data)
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
    reasons, dsources, dcounts = dead_by_reason_source(data.dead)
    if reasons:
        totals = [sum(dcounts.get((k, s), 0) for s in dsources) for k in reasons]
        body.append(svg_hbars(reasons, totals, "chart-dead-letters"))
        rows = [[_e(k)] + [dcounts.get((k, s), 0) for s in dsources] + [t] for k, t in zip(reasons, totals)]
        rows.append(["total"] + [sum(dcounts.get((k, s), 0) for k in reasons) for s in dsources] + [len(data.dead)])
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
