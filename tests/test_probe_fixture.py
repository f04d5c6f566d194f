"""``akhbar sources probe --source ID --sources FILE [--save-fixture DIR]`` and the offline replay.

A source of the sample site (127.0.0.1) is probed and recorded; the recording is then served by
a FixtureServer on another port and probed again: the output must be the same, line for line.
"""
import json

import pytest

from akhbar.pipelines.cli import main
from akhbar.pipelines.fixture import FixtureServer, normalize, replay_sources_yaml
from akhbar.sample.site import sources_yaml


@pytest.fixture()
def sources_file(sample_site, tmp_path):
    p = tmp_path / "sources.yaml"
    p.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    return p


@pytest.mark.parametrize("source", ["sahil", "wadi"])
def test_record_then_replay_gives_the_same_probe(sample_site, sources_file, tmp_path, capsys, source):
    fixture = tmp_path / "fixture"
    rc = main(["sources", "probe", "--source", source, "--sources", str(sources_file), "--articles", "3",
               "--save-fixture", str(fixture), "--allow-private-hosts", "--host-interval", "0"])
    live = capsys.readouterr().out
    assert f"source  {source}  2 feed(s)" in live and live.count("\nfeed    ") == 2
    assert live.count("\narticle ") >= 3

    index = json.loads((fixture / "index.json").read_text(encoding="utf-8"))
    assert index["version"] == 1 and index["source"] == source and len(index["feeds"]) == 2 and index["articles"] == 3
    urls = [r["url"] for r in index["responses"]]
    assert set(index["feeds"]) <= set(urls) and any(u.endswith("/robots.txt") for u in urls)
    for r in index["responses"]:  # bodies are stored byte for byte
        if r["file"]:
            assert (fixture / r["file"]).read_bytes() == sample_site_body(sample_site, r["url"])
    golden = (fixture / "probe.txt").read_text(encoding="utf-8")
    assert golden == normalize(live.split("\nfixture: ")[0])
    assert " bytes)" not in golden

    # offline: the recording served on another port, probed again
    with FixtureServer(str(fixture)) as server:
        assert server.base_url != sample_site.base_url
        replay = tmp_path / "replay.yaml"
        replay.write_text(replay_sources_yaml(server), encoding="utf-8")
        before = len(sample_site.requests)
        rc2 = main(["sources", "probe", "--source", source, "--sources", str(replay), "--articles", str(index["articles"]),
                    "--allow-private-hosts", "--host-interval", "0"])
        again = capsys.readouterr().out
        assert len(sample_site.requests) == before  # the live site was not asked again
        assert len(server.requests) == len([r for r in index["responses"] if r["status"]])
    assert rc2 == rc
    assert normalize(again, server.base_url) == golden


def sample_site_body(site, url):
    """The live site's bytes for a URL (the sample site is deterministic)."""
    import urllib.request

    with urllib.request.urlopen(url) as resp:  # 127.0.0.1 only
        return resp.read()


def test_source_probe_usage_errors(sources_file, capsys):
    assert main(["sources", "probe", "--source", "nosuch", "--sources", str(sources_file)]) == 2
    assert "no source 'nosuch'" in capsys.readouterr().err
    assert main(["sources", "probe", "--source", "sahil"]) == 2
    assert main(["sources", "probe", "http://127.0.0.1:9/x.xml", "--source", "sahil", "--sources", str(sources_file)]) == 2
    assert main(["sources", "probe"]) == 2


def _serve_sahil_world(server, feed_type: str = "application/rss+xml; charset=utf-8"):
    """The sample site's sahil/world feed and its articles on ``server``, the feed served as
    ``feed_type``; the site's robots.txt disallows everything."""
    from akhbar.sample.site import build_site
    from tests.servers import Reply

    for path, r in build_site(server.base_url).items():
        server.route(path, Reply(r.status, r.body, {"Content-Type": feed_type if path == "/sahil/world.xml"
                                                     else r.content_type}))
    server.route("/robots.txt", Reply(200, b"User-agent: *\nDisallow: /\n", {"Content-Type": "text/plain"}))
    return server.url("/sahil/world.xml")


@pytest.mark.parametrize("feed_type, refused", [("application/json", True), ("application/octet-stream", True),
                                                ("application/rss+xml", False), ("text/xml", False)])
def test_probe_refuses_a_feed_type_the_poll_refuses(server, capsys, feed_type, refused):
    """A valid RSS body served under a type the poll dead-letters fails the probe too."""
    from akhbar.schemas.records import Source
    from akhbar.transforms import steps
    from akhbar.transforms.http import FetchConfig

    url = _serve_sahil_world(server, feed_type)
    poll = steps.PollFeed(FetchConfig(retries=0, host_interval=0), allow_private=True)
    poll.setup()
    dead = [o.value.reason for o in poll.process((Source(id="s", feeds=()), url), {}) if getattr(o, "tag", None) == steps.DEAD]
    assert (dead == ["unsupported_content_type"]) is refused
    assert main(["sources", "probe", url, "--allow-private-hosts", "--articles", "0"]) == (1 if refused else 0)
    out = capsys.readouterr().out
    assert ("FEED FAILED" in out and "reason: unsupported_content_type" in out
            and f"feed served as {feed_type}" in out) is refused


def test_source_probe_follows_obey_robots_and_replays_alike(server, tmp_path, capsys):
    """robots.txt disallows everything: a source with ``obey_robots: false`` (which `akhbar run`
    fetches anyway) probes fine, one without it fails as robots_disallowed; a recording of the
    former replays without asking for robots.txt."""
    url = _serve_sahil_world(server)
    server.routes["/sahil/world-again.xml"] = server.routes["/sahil/world.xml"]
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - id: free\n    obey_robots: false\n    feeds: [{url}]\n"
                       f"  - id: polite\n    feeds: [{server.url('/sahil/world-again.xml')}]\n", encoding="utf-8")
    fixture = tmp_path / "fixture"
    common = ["--sources", str(sources), "--articles", "2", "--allow-private-hosts", "--host-interval", "0"]
    assert main(["sources", "probe", "--source", "free", *common, "--save-fixture", str(fixture)]) == 0
    live = capsys.readouterr().out
    assert live.count("\n  title: ") == 2 and "FAILED" not in live and server.count("/robots.txt") == 0
    assert main(["sources", "probe", "--source", "polite", *common]) == 1
    assert capsys.readouterr().out.count("FAILED robots_disallowed") == 2

    index = json.loads((fixture / "index.json").read_text(encoding="utf-8"))
    assert index["obey_robots"] is False
    with FixtureServer(str(fixture)) as replay_server:
        replay = tmp_path / "replay.yaml"
        replay.write_text(replay_sources_yaml(replay_server), encoding="utf-8")
        assert main(["sources", "probe", "--source", "free", "--sources", str(replay), "--articles", "2",
                     "--allow-private-hosts", "--host-interval", "0"]) == 0
        again = capsys.readouterr().out
        assert not any(p.endswith("/robots.txt") for p in replay_server.requests)
    assert normalize(again, replay_server.base_url) == (fixture / "probe.txt").read_text(encoding="utf-8")
