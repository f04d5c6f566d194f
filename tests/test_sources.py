import textwrap

import pytest

from akhbar.pipelines.cli import main
from akhbar.schemas.sources import SourcesError, load_sources, validate_text

GOOD = textwrap.dedent("""\
    sources:
      - id: bbc_arabic
        name: بي بي سي عربي
        country: GB
        poll_interval: 600
        feeds:
          - https://feeds.bbci.co.uk/arabic/rss.xml
      - id: aljazeera
        feeds: [https://www.aljazeera.net/rss]
        enabled: false
    """)


def write(tmp_path, text, name="sources.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_file_loads_with_defaults(tmp_path):
    sources = load_sources(write(tmp_path, GOOD))
    assert [s.id for s in sources] == ["bbc_arabic", "aljazeera"]
    assert sources[0].poll_interval_s == 600 and sources[0].language == "ar" and sources[0].country == "GB"
    assert sources[1].enabled is False and sources[1].poll_interval_s == 900


def problems(text):
    _, probs = validate_text(textwrap.dedent(text), "f.yaml")
    return probs


def test_every_problem_is_reported_with_file_line_and_entry():
    probs = problems("""\
        sources:
          - id: Good-Upper
            feeds: [https://a.example/rss]
          - id: ok
            feeds: [ftp://b.example/rss]
          - id: ok
            feeds: [https://c.example/rss]
            pol_interval: 5
          - name: no id
            feeds: []
        """)
    text = "\n".join(map(str, probs))
    assert "f.yaml:2: sources[0] (id: Good-Upper): id 'Good-Upper' must be lowercase" in text
    assert "f.yaml:5: sources[1] (id: ok): feed 'ftp://b.example/rss' is not an http(s) URL" in text
    assert "sources[2] (id: ok): duplicate id 'ok' (first at sources[1])" in text
    assert "sources[2] (id: ok): unknown field(s): 'pol_interval'" in text
    assert "sources[3]: 'id' is a required property" in text
    assert "sources[3]: feeds: [] should be non-empty" in text
    assert len(probs) == 6


@pytest.mark.parametrize("text, fragment", [
    ("sources: [\n", "not valid YAML"),
    ("- a\n- b\n", "top-level 'sources:' list"),
    ("sources: []\n", "should be non-empty"),
    ("srcs:\n  - id: a\n    feeds: [http://a.example/]\n", "'sources' is a required property"),
    ("sources:\n  - id: a\n    feeds: [http://x.example/f, http://x.example/f]\n", "non-unique"),
])
def test_bad_files(text, fragment):
    assert fragment in "\n".join(map(str, problems(text)))


def test_same_feed_in_two_sources_is_an_error():
    probs = problems("""\
        sources:
          - {id: a, feeds: [http://x.example/f]}
          - {id: b, feeds: [http://x.example/f]}
        """)
    assert "also listed by source 'a'" in str(probs[0]) and probs[0].line == 3


def test_load_raises_with_all_problems(tmp_path):
    p = write(tmp_path, "sources:\n  - id: A\n    feeds: [x]\n")
    with pytest.raises(SourcesError) as e:
        load_sources(p)
    assert len(e.value.problems) == 2 and str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(tmp_path / "nope.yaml")


def test_cli_validate(tmp_path, capsys):
    assert main(["sources", "validate", str(write(tmp_path, GOOD))]) == 0
    assert "OK — 2 sources, 2 feeds" in capsys.readouterr().out
    bad = write(tmp_path, "sources:\n  - id: x\n", "bad.yaml")
    assert main(["sources", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: sources[0] (id: x): 'feeds' is a required property" in err


def test_run_fails_fast_on_bad_sources_before_touching_output(tmp_path, capsys):
    bad = write(tmp_path, "sources:\n  - id: x\n    feeds: [notaurl]\n", "bad.yaml")
    out = tmp_path / "out"
    assert main(["run", "--sources", str(bad), "--output", str(out)]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err
    assert not out.exists()
