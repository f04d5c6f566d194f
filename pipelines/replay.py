"""Replay: turn failed article items in ``dead_letter/`` back into candidates.

The candidates go through the batch graph (:func:`akhbar.pipelines.batch.build_pipeline` with
``RunConfig.replay``) instead of polled ones: the same fetch, extract, classify, dedup and write
steps, so an article stored meanwhile is skipped and a new failure is a new dead letter of the
replay run. Old dead letters stay as they are (they are the history of what failed when).

Only article-level stages are replayable (``fetch``, ``extract``): a failed feed is retried by
the next ordinary run anyway. The feed entry's title, summary and date are not kept in a dead
letter, so a replayed article takes its title and publication time from the page itself.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from akhbar.schemas.records import Candidate, Source
from akhbar.transforms import store
from akhbar.transforms.urls import BadURL, article_id, canonical_url

REPLAYABLE_STAGES = ("fetch", "extract")


@dataclass
class ReplayPlan:
    candidates: list[Candidate] = field(default_factory=list)
    dead_letters_read: int = 0
    skipped: Counter = field(default_factory=Counter)  # why a matching dead letter was not replayed


def _dt_of(path: str) -> date | None:
    for seg in path.replace("\\", "/").split("/"):
        if seg.startswith("dt="):
            try:
                return date.fromisoformat(seg[3:])
            except ValueError:
                return None
    return None


def plan_replay(output: str, sources: list[Source], *, stages: tuple[str, ...] = REPLAYABLE_STAGES,
                reasons: list[str] | None = None, since: date | None = None,
                until: date | None = None) -> ReplayPlan:
    """The candidates to replay: one per canonical URL among the matching dead letters.

    ``since``/``until`` (inclusive) select by the day the failure was recorded (the ``dt``
    partition). Dead letters of sources not in ``sources`` are skipped and counted.
    """
    plan = ReplayPlan()
    known = {s.id for s in sources}
    latest: dict[str, tuple] = {}
    for path in store.list_files(store.join(output, "dead_letter")):
        day = _dt_of(path)
        if day is None or (since and day < since) or (until and day > until):
            continue
        t = store.read_table(path, ["url", "source_id", "stage", "reason", "feed_url", "time"])
        t = t.filter(pc.is_in(t.column("stage"), value_set=pa.array(list(stages), pa.string())))
        if reasons:
            t = t.filter(pc.is_in(t.column("reason"), value_set=pa.array(reasons, pa.string())))
        for row in t.to_pylist():
            plan.dead_letters_read += 1
            if row["source_id"] not in known:
                plan.skipped["source not in the sources file"] += 1
                continue
            try:
                url = canonical_url(row["url"] or "")
            except BadURL:
                plan.skipped["bad url"] += 1
                continue
            key = article_id(url)
            if key in latest:
                plan.skipped["same URL, replayed once"] += 1
                if latest[key][0] >= row["time"]:
                    continue  # keep the latest failure's feed
            latest[key] = (row["time"], Candidate(source_id=row["source_id"], feed_url=row["feed_url"] or "",
                                                  link=url, url=url, article_id=key))
    plan.candidates = [c for _, c in sorted(latest.values(), key=lambda v: v[1].article_id)]
    return plan
