import json
import time
from datetime import datetime, timedelta, timezone

from akhbar.pipelines.cli import main
from akhbar.pipelines.summary import render_feed_health
from akhbar.schemas.records import Source
from akhbar.transforms import steps
from akhbar.transforms.feedstate import (
    FeedState,
    after_body,
    after_failure,
    backoff_until,
    conditional_headers,
    load_feed_states,
    save_feed_states,
    with_entries,
)
from akhbar.transforms.http import FetchConfig
from tests.servers import Reply
from tests.test_steps import split

T0 = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)
URL = "https://ex.com/rss"


def test_validators_sent_until_the_server_lies():
    s, same = after_body(None, URL, "ex", T0, 200, {"etag": '"a"', "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"}, "h1", False)
    assert not same and conditional_headers(s) == {"If-None-Match": '"a"', "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
    s, same = after_body(s, URL, "ex", T0, 200, {"etag": '"a"'}, "h1", True)  # ignored validators, same bytes
    assert same and s.unchanged_200 == 1 and s.validators_trusted
    s, same = after_body(s, URL, "ex", T0, 200, {"etag": '"a"'}, "h2", True)  # new bytes, old ETag: a lie
    assert not same and s.validator_lies == 1 and not s.validators_trusted and conditional_headers(s) == {}
    s, _ = after_body(s, URL, "ex", T0, 200, {"etag": '"b"'}, "h3", False)
    assert not s.validators_trusted  # once lied, never trusted again


def test_backoff_after_repeated_failures():
    s = None
    for i in range(2):
        s = after_failure(s, URL, "ex", T0, "http_500", 500)
    assert backoff_until(s, 900) is None
    s = after_failure(s, URL, "ex", T0, "http_500", 500)
    assert backoff_until(s, 900) == T0 + timedelta(seconds=900)
    for _ in range(20):
        s = after_failure(s, URL, "ex", T0, "timeout", None)
    assert backoff_until(s, 900) == T0 + timedelta(days=1)
    ok, _ = after_body(s, URL, "ex", T0, 200, {}, "h", False)
    assert ok.consecutive_failures == 0 and backoff_until(ok, 900) is None


def test_state_round_trip(tmp_path):
    a = FeedState(URL, "ex", etag='"x"', last_success=T0, consecutive_failures=2, last_error="timeout")
    save_feed_states(str(tmp_path), {}, [a])
    b = FeedState("https://ex.com/other", "ex")
    save_feed_states(str(tmp_path), load_feed_states(str(tmp_path)), [b])
    assert load_feed_states(str(tmp_path)) == {URL: a, b.feed_url: b}
    assert [p.name for p in (tmp_path / "_state").iterdir()] == ["feeds.json"]


def test_stored_times_without_an_offset_are_utc():
    st = FeedState.from_json({"feed_url": URL, "source_id": "ex", "last_attempt": "2026-01-01T10:00:00",
                              "last_success": "2026-01-01T09:00:00", "consecutive_failures": 3})
    assert st.last_attempt == datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    assert backoff_until(st, 60) == datetime(2026, 1, 1, 10, 1, tzinfo=timezone.utc)  # and comparable with aware times


def test_poll_feed_skips_backed_off_feeds_and_sends_validators(server):
    calls = []

    def feed(handler):
        calls.append(handler.headers.get("If-None-Match"))
        return Reply(304, b"") if handler.headers.get("If-None-Match") == '"v"' else Reply(500, b"")

    url = server.route("/rss", feed)
    fn = steps.PollFeed(FetchConfig(retries=0, host_interval=0), allow_private=True)
    fn.setup()
    src = Source(id="ex", feeds=(url,), poll_interval_s=60)
    now = datetime.now(timezone.utc)
    dead_feed = FeedState(url, "ex", consecutive_failures=5, last_attempt=now)
    assert list(fn.process((src, url), {url: dead_feed})) == [] and calls == []
    live = FeedState(url, "ex", etag='"v"', body_hash="h")
    _, states = split(fn.process((src, url), {url: live}), tag=steps.FEED_STATE)
    assert calls == ['"v"'] and states[0].not_modified == 1 and states[0].last_status == 304


def test_health_command(tmp_path, capsys):
    now = datetime.now(timezone.utc)  # a backoff that lasts (it ends 1800 s after the attempt)
    save_feed_states(str(tmp_path), {}, [FeedState(URL, "ex", consecutive_failures=4, last_error="http_503",
                                                   last_attempt=now), FeedState("https://ok.example/rss", "ok", last_success=T0)])
    assert main(["sources", "health", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("ex") and "backoff" in out[1] and "http_503" in out[1] and "ok" in out[2]
    assert main(["sources", "health", str(tmp_path / "none")]) == 2


def test_a_backlog_turns_validators_and_the_unchanged_shortcut_off():
    s, _ = after_body(None, URL, "ex", T0, 200, {"etag": '"a"'}, "h1", False)
    s = with_entries(s, 2, "utf-8", backlog=3)
    assert conditional_headers(s) == {}  # the whole feed again, to take the entries left over
    s2, same = after_body(s, URL, "ex", T0, 200, {"etag": '"a"'}, "h1", False)
    assert not same and s2.validator_lies == 0 and s2.validators_trusted  # same bytes: not a lie, not skipped
    s3 = with_entries(s2, 3, "utf-8")
    assert conditional_headers(s3) == {"If-None-Match": '"a"'} and after_body(s3, URL, "ex", T0, 200, {}, "h1", False)[1]


def test_health_shows_backoff_only_while_it_lasts(tmp_path, capsys):
    """The backoff of a feed that failed 4 times, its source polled every 60 s, lasts 120 s after its
    last attempt: the health shows `backoff` until then and `failing` (the next poll tries it) after."""
    fn = steps.PollFeed(FetchConfig(retries=0, host_interval=0), allow_private=True)
    fn.setup()
    src = Source(id="ex", feeds=("http://127.0.0.1:9/rss",), poll_interval_s=60)  # nothing listens: a failure
    state = FeedState(src.feeds[0], "ex", consecutive_failures=3)
    _, states = split(fn.process((src, src.feeds[0]), {src.feeds[0]: state}), tag=steps.FEED_STATE)
    failed = states[0]
    assert failed.consecutive_failures == 4 and failed.poll_interval_s == 60  # the interval is kept with the failure
    attempt = failed.last_attempt
    save_feed_states(str(tmp_path), {}, [failed])
    stored = load_feed_states(str(tmp_path))[src.feeds[0]]
    assert stored.poll_interval_s == 60
    assert render_feed_health([stored], attempt + timedelta(seconds=119)).splitlines()[1].split()[1] == "backoff"
    after = render_feed_health([stored], attempt + timedelta(seconds=121))
    assert after.splitlines()[1].split()[1] == "failing"
    doc = json.loads(render_feed_health([stored], attempt + timedelta(seconds=121), as_json=True))[0]
    assert doc["status"] == "failing" and doc["backoff_until"] is None
    doc = json.loads(render_feed_health([stored], attempt + timedelta(seconds=1), as_json=True))[0]
    assert doc["status"] == "backoff" and doc["backoff_until"] == (attempt + timedelta(seconds=120)).isoformat()
    # the HTML report says the same
    from akhbar.pipelines.report import ReportData, render_html

    def report_state(now):
        html = render_html(ReportData(str(tmp_path), None, None, feeds=[stored]), now)
        return html[html.index('id="feeds"'):]
    assert "4×, backed off until" in report_state(attempt + timedelta(seconds=119))
    assert "failing (4×)" in report_state(attempt + timedelta(seconds=121))
    # a state saved before intervals were kept: the default poll_interval (900 s) is assumed
    old = FeedState(URL, "ex", consecutive_failures=3, last_attempt=T0)
    assert render_feed_health([old], T0 + timedelta(seconds=899)).splitlines()[1].split()[1] == "backoff"
    assert render_feed_health([old], T0 + timedelta(seconds=901)).splitlines()[1].split()[1] == "failing"
    # the command itself: a backoff that ended long ago is not shown as one
    save_feed_states(str(tmp_path), {}, [FeedState(URL, "ex", consecutive_failures=4, last_error="http_503",
                                                   last_attempt=T0, poll_interval_s=60)])
    assert main(["sources", "health", str(tmp_path)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ex ")][0]
    assert line.split()[1] == "failing" and "http_503" in line


def test_a_last_attempt_in_the_future_holds_a_feed_off_for_one_backoff_at_most(server):
    """A feed state written by a clock six hours ahead: the backoff counts from now, once."""
    calls = []

    def feed(handler):
        calls.append(handler.path)
        return Reply(500, b"")

    url = server.route("/rss", feed)
    fn = steps.PollFeed(FetchConfig(retries=0, host_interval=0), allow_private=True)
    fn.setup()
    src = Source(id="ex", feeds=(url,), poll_interval_s=1)
    state = FeedState(url, "ex", consecutive_failures=3, last_attempt=datetime.now(timezone.utc) + timedelta(hours=6))
    # backed off now, and the state kept says so from now on (not from six hours ahead)
    good, states = split(fn.process((src, url), {url: state}), tag=steps.FEED_STATE)
    assert good == [] and calls == [] and len(states) == 1
    capped = states[0]
    assert capped.last_attempt <= datetime.now(timezone.utc) and capped.consecutive_failures == 3
    time.sleep(1.1)  # one backoff (poll_interval 1 s × 2^0) later, the feed is polled again
    _, states = split(fn.process((src, url), {url: capped}), tag=steps.FEED_STATE)
    assert calls == ["/rss"] and states[0].consecutive_failures == 4

    now = datetime.now(timezone.utc)
    ahead = FeedState(URL, "ex", consecutive_failures=3, last_attempt=now + timedelta(hours=6))
    assert backoff_until(ahead, 60, now) == now + timedelta(seconds=60)
    assert backoff_until(ahead, 60) == now + timedelta(hours=6, seconds=60)  # without a now: as stored
    # health: the next poll would hold it off one backoff (900 s, the default interval) from now
    assert render_feed_health([ahead], now + timedelta(seconds=61)).splitlines()[1].split()[1] == "backoff"


def test_feed_health_is_not_blocked_by_a_saved_attempt_in_the_future():
    """A health file written by a clock that was ahead: the streaming job's updates, older than
    that time, still replace it (before, the feed's health stopped updating until the clock
    caught up); a late window's older update still changes nothing."""
    from akhbar.transforms.feedstate import with_health_of

    now = datetime.now(timezone.utc)
    ahead = FeedState(URL, "ex", etag='"v1"', last_attempt=now + timedelta(hours=5), last_status=500,
                      last_error="http_500", consecutive_failures=3)
    update = FeedState(URL, "ex", last_attempt=now, last_status=200, polls=9)
    got = with_health_of(ahead, update)
    assert (got.last_status, got.last_error, got.polls, got.etag) == (200, None, 9, '"v1"')
    on_file = ahead.replace(last_attempt=now - timedelta(minutes=1))
    assert with_health_of(on_file, update.replace(last_attempt=now - timedelta(minutes=5))) == on_file
