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
