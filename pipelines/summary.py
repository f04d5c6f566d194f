"""The end-of-run summary: what one run wrote, read back from the files themselves."""
from __future__ import annotations

import json
import os
import re
import shlex
from collections import Counter
from datetime import datetime, timezone

from akhbar.transforms import store


def _run_files(root: str, run_id: str) -> list[str]:
    return [p for p in store.list_files(root) if f"/part-{run_id}-" in p.replace("\\", "/")]


def run_article_ids(output: str, run_id: str) -> frozenset[str]:
    """The ids of the article rows ``run_id`` wrote (read back from its files)."""
    ids: set[str] = set()
    for path in _run_files(store.join(output, "articles"), run_id):
        ids.update(store.read_table(path, ["article_id"]).column("article_id").to_pylist())
    return frozenset(ids)


def beam_counters(result) -> dict[str, int]:
    """Counters of the ``akhbar`` namespace from a (running or finished) Beam pipeline result: the
    committed value when the runner has one, else the attempted one (empty if unavailable)."""
    from akhbar.transforms.tally import NAMESPACE  # imports Beam: only once there is a result

    out: dict[str, int] = {}
    try:
        for c in result.metrics().query()["counters"]:
            if c.key.metric.namespace == NAMESPACE:
                name = c.key.metric.name
                out[name] = out.get(name, 0) + int((c.committed if c.committed is not None else c.attempted) or 0)
    except Exception:  # noqa: BLE001 - some runners do not report metrics; the summary still works
        pass
    return dict(sorted(out.items()))


def summarize(output: str, run_id: str, counters: dict[str, int] | None = None,
              started: datetime | None = None) -> dict:
    """Rows per source and topic, near-duplicates and dead letters written by ``run_id``."""
    per_source: Counter = Counter()
    per_topic: Counter = Counter()
    near = 0
    rows = 0
    for path in _run_files(store.join(output, "articles"), run_id):
        t = store.read_table(path, ["source_id", "topics", "duplicate_of"])
        rows += t.num_rows
        per_source.update(t.column("source_id").to_pylist())
        for topics in t.column("topics").to_pylist():
            per_topic.update(topics or ["(none)"])
        near += sum(1 for d in t.column("duplicate_of").to_pylist() if d)
    dead: Counter = Counter()
    for path in _run_files(store.join(output, "dead_letter"), run_id):
        t = store.read_table(path, ["stage", "reason"])
        dead.update(f"{s}/{r}" for s, r in zip(t.column("stage").to_pylist(), t.column("reason").to_pylist()))
    counters = counters or {}
    now = datetime.now(timezone.utc)
    return {
        "run_id": run_id,
        "output": output,
        "finished_at": now.isoformat(),
        "seconds": round((now - started).total_seconds(), 2) if started else None,
        "articles_written": rows,
        "per_source": dict(sorted(per_source.items())),
        "per_topic": dict(sorted(per_topic.items())),
        "near_duplicates": near,
        "exact_duplicates_dropped": counters.get("dedup.exact_duplicates_in_run", 0)
        + counters.get("dedup.exact_duplicates_of_stored", 0),
        "dead_letters": sum(dead.values()),
        "dead_letters_by_reason": dict(sorted(dead.items())),
        "counters": counters,
    }


def write_report(output: str, summary: dict) -> str:
    path = store.join(output, "_reports", f"run-{summary['run_id']}.json")
    store.write_atomic(path, json.dumps(summary, ensure_ascii=False, indent=2).encode("utf-8"))
    return path


_DUCKDB_GLOB = re.compile(r"[*?\[]")


def duckdb_folder(output: str) -> str | None:
    """The folder :func:`duckdb_sql` must be run in, or ``None`` when it runs anywhere.

    DuckDB splits a file pattern at every backslash, taking it for a path separator (on POSIX
    too), and has no escape for one: a pattern cannot name a folder with a backslash in its name.
    The query of such an output uses a pattern relative to the output folder, run from there."""
    if store.is_local(output) and "\\" in output:
        return os.path.abspath(store.join(output))
    return None


def duckdb_sql(output: str) -> str:
    """A DuckDB query of the articles of ``output``. The output's own path is taken literally:
    DuckDB's pattern characters in it (``*``, ``?``, ``[``) are each put in a one-character class
    (``[*]``), and ``'`` is doubled for the SQL string literal."""
    if duckdb_folder(output) is not None:
        glob = "articles/**/*.parquet"
    else:
        glob = _DUCKDB_GLOB.sub(lambda m: f"[{m.group()}]", store.join(output, "articles")) + "/**/*.parquet"
    glob = glob.replace("'", "''")
    return (
        "SELECT source, count(*) AS n, count(*) FILTER (WHERE list_contains(topics, 'nato')) AS nato, "
        "count(*) FILTER (WHERE list_contains(topics, 'ukraine')) AS ukraine, "
        "count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS near_dups "
        f"FROM read_parquet('{glob}', hive_partitioning=true) GROUP BY source ORDER BY source"
    )


def duckdb_command(output: str, python: str) -> str:
    """A shell command that runs :func:`duckdb_sql` with the duckdb module installed beside akhbar
    (in :func:`duckdb_folder` when there is one).

    The SQL sits in a Python string literal inside a double-quoted shell word, so each level's
    special characters are escaped in turn (a path may hold quotes, ``$``, backslashes or line
    breaks, which become ``\\n`` in the Python literal so that the command stays on one line)."""
    sql = duckdb_sql(output).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    code = re.sub(r'([\\$`"])', r"\\\1", f'import duckdb; duckdb.sql("{sql}").show()')
    folder = duckdb_folder(output)
    cd = f"cd -- {shlex.quote(folder)} && " if folder is not None else ""
    return f'{cd}{shlex.quote(python)} -c "{code}"'


def render(summary: dict) -> str:
    """A plain-text table for the terminal."""
    lines = [f"run {summary['run_id']} wrote {summary['articles_written']} article rows to {summary['output']}"
             + (f" in {summary['seconds']} s" if summary.get("seconds") is not None else "")]
    lines.append("")
    lines.append(f"  {'source':<20}{'rows':>6}")
    for src, n in summary["per_source"].items():
        lines.append(f"  {src:<20}{n:>6}")
    lines.append("")
    lines.append(f"  {'topic':<20}{'rows':>6}")
    for topic, n in summary["per_topic"].items():
        lines.append(f"  {topic:<20}{n:>6}")
    lines.append("")
    lines.append(f"  near-duplicates written (duplicate_of set): {summary['near_duplicates']}")
    lines.append(f"  exact duplicates dropped:                   {summary['exact_duplicates_dropped']}")
    stored = summary["counters"].get("dedup.already_stored", 0)
    if stored:
        lines.append(f"  entries already stored (skipped):          {stored}")
    lines.append(f"  dead letters:                               {summary['dead_letters']}")
    for reason, n in summary["dead_letters_by_reason"].items():
        lines.append(f"      {reason:<36}{n:>5}")
    return "\n".join(lines)


def render_feed_health(states: list, now: datetime, as_json: bool = False, given_up: dict[str, int] | None = None) -> str:
    """A table of feed states (see :mod:`akhbar.transforms.feedstate`), failing feeds first. The
    status is the one at ``now``: ``backoff`` only while the feed's backoff lasts (JSON: ``status``
    and ``backoff_until`` next to the stored fields). ``given_up``: pages given up on per feed URL
    (:class:`akhbar.transforms.state.PageFailures`; None: not counted, shown as ``?``)."""
    from akhbar.transforms.feedstate import health_status

    states = sorted(states, key=lambda s: (-s.consecutive_failures, s.source_id, s.feed_url))
    if as_json:
        docs = []
        for s in states:
            status, until = health_status(s, now)
            docs.append({**s.to_json(), "status": status, "backoff_until": until.isoformat() if until else None,
                         "pages_given_up": None if given_up is None else given_up.get(s.feed_url, 0)})
        return json.dumps(docs, ensure_ascii=False, indent=1)

    def ago(t):
        if t is None:
            return "never"
        secs = int((now - t).total_seconds())
        return f"{secs // 86400}d ago" if secs >= 86400 else f"{secs // 3600}h ago" if secs >= 3600 else f"{secs // 60}m ago"

    lines = [f"{'source':<14}{'status':<10}{'last ok':<10}{'fails':>6}  {'last error':<22}{'304s':>5}{'same':>5}"
             f"{'lies':>5}{'given up':>9}  feed"]
    for s in states:
        status, _ = health_status(s, now)
        gave_up = "?" if given_up is None else given_up.get(s.feed_url, 0)
        lines.append(f"{s.source_id:<14}{status:<10}{ago(s.last_success):<10}{s.consecutive_failures:>6}  "
                     f"{(s.last_error or '-'):<22}{s.not_modified:>5}{s.unchanged_200:>5}{s.validator_lies:>5}"
                     f"{gave_up:>9}  {s.feed_url}")
    return "\n".join(lines)

