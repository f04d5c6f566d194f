"""Per-feed state: conditional-GET validators, body hash and health, under ``_state/feeds.json``.

The state is written once per run, after the run's articles and dead letters are committed, so
validators are never saved for a poll whose articles were lost in a crash (the next run would
otherwise get a 304 and never see them again).

Validators are only trusted while the server keeps them honest: a feed that changes its body
but keeps its ETag / Last-Modified would hide new entries behind 304s, so after one such lie the
feed is polled without validators. Feeds that ignore validators and send identical bodies with
200 are counted (``unchanged_200``).

Dead feeds are backed off: after ``BACKOFF_AFTER`` consecutive failures the feed is skipped
until ``poll_interval × 2^(failures - BACKOFF_AFTER)`` (at most a day) has passed since the
last attempt. The poll interval a failure was recorded with is kept in the state, so that
``akhbar sources health`` (which has no sources file) can tell when the backoff ends. A last
attempt in the future (written by a clock that was ahead) counts as now: it never holds a feed
off for longer than one backoff.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from akhbar.transforms import store
from akhbar.transforms.dates import as_utc

STATE_FILE = ("_state", "feeds.json")
BACKOFF_AFTER = 3
MAX_BACKOFF = timedelta(days=1)
# what a source without ``poll_interval`` gets (schemas/sources.schema.json): assumed for states
# written before the interval was recorded with each failure
DEFAULT_POLL_INTERVAL_S = 900


@dataclass(frozen=True)
class FeedState:
    feed_url: str
    source_id: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    validators_trusted: bool = True
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    polls: int = 0
    not_modified: int = 0  # 304 answers
    unchanged_200: int = 0  # 200 with the same bytes as last time
    validator_lies: int = 0  # new bytes under the old validators
    entries: int = 0  # entries in the last successful parse
    encoding: str | None = None  # character encoding the last body was decoded with
    backlog: int = 0  # entries max_articles_per_poll left for a later poll at the last successful parse
    poll_interval_s: int | None = None  # the source's poll_interval at the last failure (sets the backoff)
    # entries without a link in the last parsed body, already dead-lettered (feeds.entry_key): a
    # later poll that still lists one does not report it again
    linkless: tuple[str, ...] = ()

    def replace(self, **changes) -> "FeedState":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("last_attempt", "last_success"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "FeedState":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("last_attempt", "last_success"):
            d[k] = as_utc(datetime.fromisoformat(d[k])) if d.get(k) else None
        d["linkless"] = tuple(str(k) for k in d.get("linkless") or ())
        return cls(**d)



def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def conditional_headers(state: FeedState | None) -> dict[str, str]:
    # a feed with a backlog must be read again in full even if it has not changed
    if state is None or not state.validators_trusted or state.backlog:
        return {}
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def backoff_until(state: FeedState | None, poll_interval_s: int | None,
                  now: datetime | None = None) -> datetime | None:
    """When a failing feed may be polled again; ``None`` if it is not backed off (or never was).

    The backoff counts from the last attempt, or from ``now`` when the last attempt is later than
    ``now`` (a clock that was ahead): a backoff never ends later than one wait from ``now``.
    Without ``poll_interval_s``, the interval recorded with the last failure (else the default)."""
    if state is None or state.consecutive_failures < BACKOFF_AFTER or state.last_attempt is None:
        return None
    interval = poll_interval_s or state.poll_interval_s or DEFAULT_POLL_INTERVAL_S
    wait = timedelta(seconds=interval) * 2 ** (state.consecutive_failures - BACKOFF_AFTER)
    start = state.last_attempt if now is None else min(state.last_attempt, now)
    return start + min(wait, MAX_BACKOFF)


def with_attempt_capped(state: FeedState, now: datetime) -> FeedState | None:
    """``state`` with a last attempt in the future brought back to ``now`` (kept so that the
    backoff :func:`backoff_until` counts from now ends, instead of restarting at every poll);
    ``None`` when the last attempt is not in the future."""
    if state.last_attempt is None or state.last_attempt <= now:
        return None
    return state.replace(last_attempt=now)


def health_status(state: FeedState, now: datetime) -> tuple[str, datetime | None]:
    """What ``akhbar sources health`` and the report show for a feed: ``ok`` (its last poll
    succeeded), ``failing`` (it failed, and the next poll will try it) or ``backoff`` (polls skip
    it until the time returned)."""
    if not state.consecutive_failures:
        return "ok", None
    until = backoff_until(state, None, now)
    if until is not None and now < until:
        return "backoff", until
    return "failing", None


def after_not_modified(state: FeedState, now: datetime) -> FeedState:
    return state.replace(last_attempt=now, last_success=now, last_status=304, last_error=None,
                         consecutive_failures=0, polls=state.polls + 1, not_modified=state.not_modified + 1)


def after_body(state: FeedState | None, feed_url: str, source_id: str, now: datetime, status: int,
               headers: dict[str, str], digest: str, sent_validators: bool) -> tuple[FeedState, bool]:
    """The state after a 200; returns it and whether the body is the same as last time with
    every entry handled then (no backlog left by ``max_articles_per_poll``)."""
    prev = state or FeedState(feed_url=feed_url, source_id=source_id)
    etag, modified = headers.get("etag"), headers.get("last-modified")
    same = prev.body_hash == digest
    unchanged = same and not prev.backlog
    lied = (not same and prev.body_hash is not None and
            ((etag and etag == prev.etag) or (modified and modified == prev.last_modified and not etag)))
    new = prev.replace(
        etag=etag, last_modified=modified, body_hash=digest, last_attempt=now, last_success=now,
        last_status=status, last_error=None, consecutive_failures=0, polls=prev.polls + 1,
        unchanged_200=prev.unchanged_200 + (1 if same and sent_validators else 0),
        validator_lies=prev.validator_lies + (1 if lied else 0),
        validators_trusted=prev.validators_trusted and not lied,
    )
    return new, unchanged


def after_failure(state: FeedState | None, feed_url: str, source_id: str, now: datetime, reason: str,
                  status: int | None, poll_interval_s: int | None = None) -> FeedState:
    prev = state or FeedState(feed_url=feed_url, source_id=source_id)
    return prev.replace(last_attempt=now, last_status=status, last_error=reason,
                        consecutive_failures=prev.consecutive_failures + 1, polls=prev.polls + 1,
                        poll_interval_s=poll_interval_s or prev.poll_interval_s)


def with_entries(state: FeedState, n: int, encoding: str | None, backlog: int = 0,
                 linkless: tuple[str, ...] = ()) -> FeedState:
    return state.replace(entries=n, encoding=encoding, backlog=backlog, linkless=linkless)


class CorruptFeedState(ValueError):
    """``_state/feeds.json`` is there but is not a feed-state document; the message names the file."""


def load_feed_states(output: str) -> dict[str, FeedState]:
    """The saved state of every feed; :class:`CorruptFeedState` if the file cannot be understood
    (storage errors stay ``OSError``)."""
    path = store.join(output, *STATE_FILE)
    if not store.exists(path):
        return {}
    try:
        data = json.loads(store.read_bytes(path).decode("utf-8"))
        return {d["feed_url"]: FeedState.from_json(d) for d in data.get("feeds", [])}
    except IsADirectoryError:
        raise CorruptFeedState(f"{path} is a directory, not a feed-state file") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # not JSON, not UTF-8, not the expected shape
        raise CorruptFeedState(f"{path} is not a readable feed-state file ({type(e).__name__}: {e})") from e


def set_aside_feed_states(output: str) -> str:
    """Rename an unreadable ``_state/feeds.json`` to ``feeds.json.corrupt-TIMESTAMP`` (kept for a
    look, out of the way of the next save); return the new name."""
    path = store.join(output, *STATE_FILE)
    aside = f"{path}.corrupt-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"
    store.rename(path, aside)
    return aside


def _write_feed_states(output: str, states: dict[str, FeedState], **commit) -> None:
    doc = {"version": 1, "feeds": [states[k].to_json() for k in sorted(states)]}
    store.write_atomic(store.join(output, *STATE_FILE), json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8"),
                       **commit)


def save_feed_states(output: str, prior: dict[str, FeedState], updates: list[FeedState], **commit) -> int:
    """Merge this run's updates into the prior states and write them atomically (``commit``:
    :func:`akhbar.transforms.store.write_atomic`'s guard of the commit, if any)."""
    merged = dict(prior)
    for s in updates:
        merged[s.feed_url] = s
    _write_feed_states(output, merged, **commit)
    return len(updates)


def with_health_of(saved: FeedState | None, update: FeedState, now: datetime | None = None) -> FeedState:
    """``update``'s health (attempts, status, errors, counts) with ``saved``'s validators (and
    link-less entries reported).

    For a job that runs on: its validators stay in its own state and are not written, since the
    articles of its latest polls may not be committed yet; the ones on file came with committed
    articles. So do the link-less entries reported, whose dead letters may not be committed yet
    either. An update older than what is saved (a late window) changes nothing, unless what is
    saved is later than ``now`` (written by a clock that was ahead: it would block every update
    until the clock caught up)."""
    now = now or datetime.now(timezone.utc)
    if (saved is not None and saved.last_attempt and update.last_attempt and saved.last_attempt <= now
            and update.last_attempt < saved.last_attempt):
        return saved
    return update.replace(etag=saved.etag if saved else None, last_modified=saved.last_modified if saved else None,
                          body_hash=saved.body_hash if saved else None, linkless=saved.linkless if saved else ())


def save_feed_health(output: str, saved: dict[str, FeedState], updates: list[FeedState],
                     **commit) -> dict[str, FeedState]:
    """Write ``saved`` with the health of ``updates`` (see :func:`with_health_of`); return what was written."""
    merged = dict(saved)
    for s in updates:
        merged[s.feed_url] = with_health_of(saved.get(s.feed_url), s)
    _write_feed_states(output, merged, **commit)
    return merged
