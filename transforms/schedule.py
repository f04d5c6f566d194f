"""When each source is polled in streaming mode: its own interval, adapted within bounds.

Every source starts at the ``poll_interval`` of the sources file. After each poll the interval
is adapted to what the poll found: a poll that brought new articles halves it (busy feeds are
polled more), a poll that brought nothing stretches it by half (quiet feeds are polled less),
always within ``[poll_interval × MIN_FACTOR, poll_interval × MAX_FACTOR]`` (and never below
``MIN_INTERVAL_S`` or above a day). Everything here is a pure function of its arguments; the
schedule is saved under ``_state/streaming.json`` so a restarted job continues where it was.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from akhbar.schemas.records import Source
from akhbar.transforms import store
from akhbar.transforms.dates import as_utc

SCHEDULE_FILE = ("_state", "streaming.json")
MIN_FACTOR = 0.25
MAX_FACTOR = 4.0
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 86400.0
SPEED_UP = 0.5  # interval × this after a poll with new articles
SLOW_DOWN = 1.5  # interval × this after a poll without


def bounds(base_s: float) -> tuple[float, float]:
    """The adaptive interval range of a source whose configured interval is ``base_s``."""
    lo = max(MIN_INTERVAL_S, base_s * MIN_FACTOR)
    hi = max(lo, min(MAX_INTERVAL_S, base_s * MAX_FACTOR))
    return lo, hi


def next_interval(current_s: float, base_s: float, new_items: int) -> float:
    """The interval after a poll that found ``new_items`` new articles."""
    lo, hi = bounds(base_s)
    factor = SPEED_UP if new_items > 0 else SLOW_DOWN
    return min(hi, max(lo, current_s * factor))


@dataclass(frozen=True)
class SourceSchedule:
    source_id: str
    interval_s: float  # the current (adapted) interval
    next_due: datetime
    last_poll: datetime | None = None
    last_new: int = 0  # new articles found by the last poll
    polls: int = 0

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["next_due"] = self.next_due.isoformat()
        d["last_poll"] = self.last_poll.isoformat() if self.last_poll else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> SourceSchedule:
        return cls(source_id=d["source_id"], interval_s=float(d["interval_s"]),
                   next_due=as_utc(datetime.fromisoformat(d["next_due"])),
                   last_poll=as_utc(datetime.fromisoformat(d["last_poll"])) if d.get("last_poll") else None,
                   last_new=int(d.get("last_new", 0)), polls=int(d.get("polls", 0)))



def initial_schedule(sources: list[Source], now: datetime,
                     saved: dict[str, SourceSchedule] | None = None) -> dict[str, SourceSchedule]:
    """One entry per enabled source: the saved one (interval clamped to the source's current
    bounds, so an edited sources file takes effect), else due now at its configured interval."""
    saved = saved or {}
    out = {}
    for s in sources:
        if not s.enabled:
            continue
        lo, hi = bounds(s.poll_interval_s)
        prev = saved.get(s.id)
        if prev is None:
            out[s.id] = SourceSchedule(s.id, float(s.poll_interval_s), now)
        else:
            interval = min(hi, max(lo, prev.interval_s))
            due = prev.next_due if prev.last_poll is None else prev.last_poll + timedelta(seconds=interval)
            # a saved time in the future (a clock that was ahead, or set back since) must not hold the
            # source off: never later than one interval from now
            due = min(due, now + timedelta(seconds=interval))
            out[s.id] = dataclasses.replace(prev, interval_s=interval, next_due=due)
    return out


def due_sources(schedule: dict[str, SourceSchedule], now: datetime) -> list[str]:
    return sorted(sid for sid, e in schedule.items() if e.next_due <= now)


def next_wakeup(schedule: dict[str, SourceSchedule]) -> datetime | None:
    return min((e.next_due for e in schedule.values()), default=None)


def after_poll(entry: SourceSchedule, base_s: float, polled_at: datetime, new_items: int) -> SourceSchedule:
    """The entry after a poll started at ``polled_at`` found ``new_items`` new articles."""
    interval = next_interval(entry.interval_s, base_s, new_items)
    return dataclasses.replace(entry, interval_s=interval, next_due=polled_at + timedelta(seconds=interval),
                               last_poll=polled_at, last_new=new_items, polls=entry.polls + 1)


def load_schedule(output: str) -> dict[str, SourceSchedule]:
    path = store.join(output, *SCHEDULE_FILE)
    if not store.exists(path):
        return {}
    try:
        doc = json.loads(store.read_bytes(path).decode("utf-8"))
        return {d["source_id"]: SourceSchedule.from_json(d) for d in doc.get("sources", [])}
    except (ValueError, KeyError, TypeError, AttributeError, IsADirectoryError) as e:
        # a damaged schedule only costs an early poll of each source; say so, naming the file
        logging.getLogger(__name__).warning("%s is not a readable schedule (%s: %s); every source is due now",
                                            path, type(e).__name__, e)
        return {}


def save_schedule(output: str, schedule: dict[str, SourceSchedule], extra: dict | None = None, **commit) -> None:
    """Write the schedule atomically (entries of sources no longer configured are kept out;
    ``commit``: :func:`akhbar.transforms.store.write_atomic`'s guard of the commit, if any)."""
    doc = {"version": 1, **(extra or {}), "sources": [schedule[k].to_json() for k in sorted(schedule)]}
    store.write_atomic(store.join(output, *SCHEDULE_FILE),
                       json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8"), **commit)
