"""Steps called directly through DoFn.process (setup run by hand), on real HTTP."""
from datetime import datetime, timezone

from apache_beam import pvalue

from akhbar.schemas.records import Article, Candidate, Page, Source
from akhbar.transforms import steps, tally
from akhbar.transforms.dedup import NearDupConfig
from akhbar.transforms.http import FetchConfig
from akhbar.transforms.state import PriorState
from akhbar.transforms.urls import article_id
from tests.servers import Reply

FAST = FetchConfig(retries=0, connect_timeout=2, read_timeout=2, host_interval=0)


def split(outputs, tag=steps.DEAD):
    """(main outputs, outputs tagged ``tag``); other tags are dropped."""
    good, tagged = [], []
    for o in outputs:
        if not isinstance(o, pvalue.TaggedOutput):
            good.append(o)
        elif o.tag == tag:
            tagged.append(o.value)
    return good, tagged


def started(fn):
    fn.setup()
    return fn


def test_poll_feed_good_and_broken(sample_site):
    fn = started(steps.PollFeed(FAST, allow_private=True, run_id="r"))
    src = Source(id="sahil", feeds=())
    good, dead = split(fn.process((src, f"{sample_site.base_url}/sahil/world.xml"), {}))
    assert len(good) >= 5 and all(isinstance(c, Candidate) and c.source_id == "sahil" for c in good)
    assert len({c.url for c in good}) == len(good)  # the seed-003 tracking-parameter twin collapsed
    good, dead = split(fn.process((Source(id="qarya", feeds=()), f"{sample_site.base_url}/qarya/news.xml"), {}))
    assert good == [] and [(d.stage, d.reason, d.source_id, d.run_id) for d in dead] == [("poll", "http_500", "qarya", "r")]


def test_poll_feed_refuses_loopback_without_permission(sample_site):
    fn = started(steps.PollFeed(FAST, allow_private=False))
    good, dead = split(fn.process((Source(id="s", feeds=()), f"{sample_site.base_url}/sahil/world.xml"), {}))
    assert good == [] and dead[0].reason == "blocked_address"


def test_poll_feed_not_a_feed(server):
    url = server.route("/feed", Reply(200, b"<html><body>hello</body></html>", {"Content-Type": "text/html"}))
    fn = started(steps.PollFeed(FAST, allow_private=True))
    good, dead = split(fn.process((Source(id="s", feeds=()), url), {}))
    assert dead[0].reason == "feed_parse_error" and "hello" in dead[0].detail


def test_an_entry_without_a_link_is_reported_once_while_its_feed_lists_it(server):
    """The poll state names the link-less entries it dead-lettered; a changed feed that still lists
    one does not report it again, a new one is reported, and one that left and came back is
    reported again (the state names only what the last body listed)."""
    def rss(*items):
        body = "".join(f"<item><title>{t}</title>{extra}</item>" for t, extra in items)
        return Reply(200, f'<rss version="2.0"><channel><title>x</title>{body}</channel></rss>'.encode(),
                     {"Content-Type": "application/rss+xml"})

    url = server.url("/feed.xml")
    no_link = ("bare", '<guid isPermaLink="false">entry-1</guid>')
    other = ("other", '<guid isPermaLink="false">entry-2</guid>')
    fn = started(steps.PollFeed(FAST, allow_private=True))
    src = Source(id="s", feeds=())
    states = {}
    reported = []
    for items in ([no_link], [no_link, ("a", f"<link>{server.url('/a')}</link>")], [no_link, other], [other],
                  [other, no_link]):
        server.route("/feed.xml", rss(*items))
        outputs = list(fn.process((src, url), states))
        (state,) = [o.value for o in outputs if isinstance(o, pvalue.TaggedOutput) and o.tag == steps.FEED_STATE]
        states = {url: state}
        reported.append(sorted(d.message.split("'")[1] for d in split(outputs)[1]))
        assert all(d.reason == "entry_without_link" for d in split(outputs)[1])
        assert len(state.linkless) == len(items) - sum("<link>" in extra for _, extra in items)
    assert reported == [["bare"], [], ["other"], [], ["bare"]]


def cand(url, source="s"):
    return Candidate(source_id=source, feed_url="http://f", link=url, url=url, article_id=article_id(url))


def test_fetch_one(server, sample_site):
    fn = started(steps.FetchPages(FAST, allow_private=True))
    good, dead = split(fn.fetch_one(cand(f"{sample_site.base_url}/madina/2022/11/seed-002.html")))
    assert isinstance(good[0], Page) and good[0].encoding == "cp1256" and "الناتو" in good[0].html
    _, dead = split(fn.fetch_one(cand(server.url("/gone"))))
    assert dead[0].reason == "http_404" and dead[0].stage == "fetch"
    pdf = server.route("/r.pdf", Reply(200, b"%PDF-1.4", {"Content-Type": "application/pdf"}))
    _, dead = split(fn.fetch_one(cand(pdf)))
    assert dead[0].reason == "unsupported_content_type"


def test_fetch_pages_bundle_keeps_every_element(server):
    for i in range(40):
        server.route(f"/p{i}", Reply(200 if i % 4 else 404, b"<html><body><p>x</p></body></html>", {"Content-Type": "text/html"}))
    fn = started(steps.FetchPages(FAST, allow_private=True, concurrency=3))
    fn.start_bundle()
    outs = []
    from apache_beam.transforms.window import GlobalWindow
    for i in range(40):
        outs += list(fn.process(cand(server.url(f"/p{i}")), timestamp=0, window=GlobalWindow()))
    outs += list(fn.finish_bundle())
    good = [o for o in outs if not isinstance(o, pvalue.TaggedOutput)]
    dead = [o for o in outs if isinstance(o, pvalue.TaggedOutput)]
    assert len(good) == 30 and len(dead) == 10
    fn.teardown()


def test_fetch_counts_are_made_in_the_bundle_thread(server, monkeypatch):
    """Beam counts only in the bundle's own thread: what a fetch thread counts (pages, dead
    letters, its CPU time) must be counted again when its result is emitted, in input order."""
    import threading

    from apache_beam.transforms.window import GlobalWindow

    counted = []

    class Counter:
        def __init__(self, name):
            self.name = name

        def inc(self, n=1):
            counted.append((self.name, n, threading.current_thread() is threading.main_thread()))

    monkeypatch.setattr(tally.Metrics, "counter", lambda namespace, name: Counter(name))
    monkeypatch.setattr(tally, "_counters", {})  # counters made before the patch are kept there
    for i in range(12):
        server.route(f"/c{i}", Reply(200 if i % 3 else 404, b"<html><body><p>x</p></body></html>",
                                     {"Content-Type": "text/html"}))
    fn = started(steps.FetchPages(FAST, allow_private=True, concurrency=2))
    fn.start_bundle()
    outs = []
    for i in range(12):
        outs += list(fn.process(cand(server.url(f"/c{i}")), timestamp=0, window=GlobalWindow()))
    outs += list(fn.finish_bundle())
    fn.teardown()
    urls = [(o.value if isinstance(o, pvalue.TaggedOutput) else o).value for o in outs]
    assert [getattr(u, "url", None) or u.candidate.url for u in urls] == [server.url(f"/c{i}") for i in range(12)]
    assert all(main for _, _, main in counted)
    totals = {}
    for name, n, _ in counted:
        totals[name] = totals.get(name, 0) + n
    assert totals["fetch.pages"] == 8 and totals["fetch.dead.http_404"] == 4 and "fetch.cpu_us" in totals


def test_timed_counts_cpu_of_the_step_only(monkeypatch):
    counted = []

    class Counter:
        def __init__(self, name):
            self.name = name

        def inc(self, n=1):
            counted.append((self.name, n))

    monkeypatch.setattr(tally.Metrics, "counter", lambda namespace, name: Counter(name))
    monkeypatch.setattr(tally, "_counters", {})  # counters made before the patch are kept there

    class Busy(steps.Step):
        stage = "busy"

        @steps.timed
        def process(self, n):
            yield sum(range(n))
            yield -1

    outs = []
    for out in Busy().process(10):
        outs.append(out)
        sum(range(3_000_000))  # the consumer's work, done while the step is suspended: not counted
    assert outs == [45, -1]
    [(name, us)] = counted
    assert name == "busy.cpu_us" and 0 <= us < 50_000


def page(html, url="https://ex.com/a"):
    return Page(candidate=cand(url), final_url=url, status=200, content_type="text/html", html=html,
                encoding="utf-8", fetched_at=datetime(2026, 11, 24, tzinfo=timezone.utc))


def test_extract_articles_good_empty_and_crash():
    fn = started(steps.ExtractArticles(NearDupConfig(), min_words=5, run_id="r"))
    body = "".join(f"<p>قال الأمين العام لحلف شمال الأطلسي في الفقرة رقم {i} إن الحلف سيواصل دعم أوكرانيا.</p>" for i in range(5))
    good, _ = split(fn.process(page(f"<html><body><article><h1>عنوان</h1>{body}</article></body></html>")))
    a = good[0]
    assert isinstance(a, Article) and a.run_id == "r" and len(a.signature) == 4 * 128 and len(a.shingles) > 0
    _, dead = split(fn.process(page("<html><body><nav>الرئيسية</nav></body></html>")))
    assert dead[0].reason == "empty_body"
    _, dead = split(fn.process(page(None)))  # not a string: an unexpected error, still a dead letter
    assert dead[0].reason == "internal_error" and "Traceback" in dead[0].detail


def test_classify_step_sets_topics_and_evidence():
    fn = started(steps.Classify(None, None))
    a = Article(article_id="x", url="u", source_id="s", title="الناتو يبحث دعم أوكرانيا", body="قال الأمين العام لحلف الناتو إن دعم أوكرانيا مستمر.\nوأضاف أن كييف ستحصل على أسلحة.",
                published_at=None, fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc), language="ar", content_hash="h")
    (out,) = fn.process(a)
    assert set(out.topics) == {"nato", "ukraine"} and any(e.startswith("nato:") for e in out.evidence)


def test_exact_duplicates():
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def art(aid, pub):
        return Article(article_id=aid, url=aid, source_id="s", title="", body="", published_at=pub, fetched_at=t,
                       language="ar", content_hash="h")
    fn = steps.DropExactDuplicates()
    later, earlier = art("b", datetime(2025, 1, 2, tzinfo=timezone.utc)), art("a", datetime(2025, 1, 3, tzinfo=timezone.utc))
    assert list(fn.process(("h", [earlier, later]), PriorState())) == [later]
    assert list(fn.process(("h", [earlier]), PriorState(content_hashes=frozenset({"h"})))) == []


def test_skip_stored():
    c = cand("https://ex.com/a")
    assert list(steps.SkipStored().process(c, PriorState(article_ids=frozenset({c.article_id})))) == []
    assert list(steps.SkipStored().process(c, PriorState())) == [c]


def test_skip_stored_pages_and_one_page_per_url():
    """Streaming cycles fetch before the cycle that writes: a page of an article stored since is dropped,
    and of two pages of one URL (two feeds) the one of the earliest entry is kept, as for candidates."""
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    c = cand("https://ex.com/a")
    page = Page(candidate=c, final_url=c.url, status=200, content_type="text/html", html="", encoding="utf-8",
                fetched_at=t)
    assert list(steps.SkipStored().process(page, PriorState(article_ids=frozenset({c.article_id})))) == []
    assert list(steps.SkipStored().process(page, PriorState())) == [page]
    early = Candidate(**{**c.__dict__, "feed_url": "https://ex.com/z.xml", "feed_published": t})
    other = Page(**{**page.__dict__, "candidate": early})
    assert steps.earliest_page([page, other]) is other and steps.earliest_candidate([c, early]) is early
