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


def _anchored_patterns(schema):
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and value.startswith("^") and value.endswith("$"):
                yield value
            yield from _anchored_patterns(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _anchored_patterns(value)


def test_no_anchored_pattern_takes_a_final_newline():
    """JSON Schema's `$` is the very end; Python's would also match before a final newline."""
    from akhbar.schemas.sources import _schema, _search

    patterns = list(_anchored_patterns(_schema()))
    assert len(patterns) >= 4
    samples = {"^[a-z][a-z0-9_-]*$": "abc", "^[A-Z]{2}$": "GB", "^[a-z]{2,3}(-[A-Za-z0-9]+)*$": "ar"}
    for pattern in patterns:
        sample = samples.get(pattern, "http://a.example/rss")
        assert _search(pattern).search(sample), pattern
        assert not _search(pattern).search(sample + "\n"), pattern


@pytest.mark.parametrize("entry, fragment", [
    ('id: "abc\\n"', "id 'abc\\n' must be lowercase"),
    ("id: |\n      abc", "id 'abc\\n' must be lowercase"),
    ('id: a\n    language: "ar\\n"', "language: 'ar\\n' does not match"),
    ('id: a\n    country: "GB\\n"', "country: 'GB\\n' does not match"),
])
def test_a_final_newline_is_refused(entry, fragment):
    text = f"sources:\n  - {entry}\n    feeds: [http://a.example/rss]\n"
    assert fragment in "\n".join(map(str, problems(text)))


def test_duplicate_keys_are_errors_with_their_lines():
    probs = problems("""\
        sources:
          - id: a
            feeds: [http://a.example/rss]
            feeds: [http://b.example/rss]
        sources:
          - id: b
            feeds: [http://c.example/rss]
        """)
    text = "\n".join(map(str, probs))
    assert "f.yaml:4: sources[0] (id: a): key 'feeds' given twice (first on line 3)" in text
    assert "f.yaml:5: key 'sources' given twice (first on line 1)" in text
    assert len(probs) == 2
    # the same mapping reached twice through an alias is not a duplicate; a merge key is not one either
    assert problems("""\
        sources:
          - &a {id: a, feeds: [http://a.example/rss]}
          - <<: *a
            id: b
            feeds: [http://b.example/rss]
        """) == []


@pytest.mark.parametrize("feed, fragment", [
    ("http://[::1/rss", "is not a valid URL: Invalid IPv6 URL"),
    ("http://[::1]x/rss", "is not an IPv6 address in brackets"),
    ("http://[zz]/rss", "is not a valid URL"),
    ("https://exa mple.com/rss", "has a space or a control character"),
    ("http://a.example/r ss", "has a space or a control character"),
    ("http://x.com:abc/rss", "Port could not be cast to integer"),
    ("http://127.0.0.1:99999/rss", "Port out of range"),
    ("http://127.0.0.1:0/rss", "port 0"),
    ("http://a..b/rss", "is not a valid host name"),
    ("http://-a.example/rss", "is not a valid host name"),
    ("http://a.example\\u0000/rss", "control character"),
    ("http:///rss", "has no host"),
    ("http://:80/rss", "has no host"),
])
def test_feed_hosts_and_ports_are_checked(feed, fragment):
    text = f'sources:\n  - id: a\n    feeds: ["{feed}"]\n'
    probs = problems(text)
    assert len(probs) == 1 and fragment in str(probs[0]), probs


@pytest.mark.parametrize("feed", ["http://[::1]:8080/rss", "https://a.example./rss?x=1#y", "http://127.0.0.1/rss",
                                  "https://موقع.مصر/rss", "https://user@a_b.example:443", "https://a.example/خبر"])
def test_good_feed_urls_pass(feed):
    assert problems(f'sources:\n  - id: a\n    feeds: ["{feed}"]\n') == []


def test_alias_bombs_are_refused_quickly_and_briefly(tmp_path):
    import time

    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    text = "\n".join(lines) + "\nsources:\n- id: a\n  feeds: [http://a.example/x]\n  notes: *a7\n"
    started = time.monotonic()
    probs = problems(text)
    assert time.monotonic() - started < 2
    assert len(probs) == 1 and "aliases expand to more than 100,000 values" in str(probs[0])
    assert "refers to a value that contains it" in str(problems("sources: &s [*s]\n")[0])
    assert "nested too deeply" in str(problems("sources: " + "[" * 5000 + "]" * 5000 + "\n")[0])


def test_long_values_are_cut_short_in_messages():
    probs = problems(f"sources:\n  - id: a\n    feeds: [http://a.example/x]\n    notes: [{', '.join(['y'] * 5000)}]\n")
    assert len(probs) == 1 and len(str(probs[0])) < 200 and "chars)" in str(probs[0])


@pytest.mark.parametrize("text, message", [
    ("version: 2\nsources: [{id: a, feeds: [http://a.example/x]}]\n", "f.yaml:1: version: 2 is not one of [1]"),
    ("sources: []\n", "f.yaml:1: sources: [] should be non-empty"),
    ("sources: [{id: a, feeds: [http://a.example/x], country: NO}]\n",
     "country: NO was read as a boolean (False); quote it: 'NO'"),
    ("sources: [{id: 12, feeds: [http://a.example/x]}]\n", "id: 12 was read as a number (12); quote it: '12'"),
    ("sources: [{id: a, feeds: [http://a.example/x], min_interval: .nan}]\n", "min_interval: .nan is not a number"),
])
def test_messages_name_the_field(text, message):
    assert message in "\n".join(map(str, problems(text)))


@pytest.mark.parametrize("bad", ["2024", "007", "2024-01-01", "1e5", "9news"])
def test_an_id_must_start_with_a_letter(tmp_path, bad):
    # the id becomes the source= partition: readers infer "2024" as an integer, "2024-01-01" as a date
    f = tmp_path / "s.yaml"
    f.write_text(f"sources:\n  - id: '{bad}'\n    feeds: [https://example.com/rss]\n", encoding="utf-8")
    with pytest.raises(SourcesError) as e:
        load_sources(f)
    assert f"id '{bad}' must start with a lowercase letter" in str(e.value)
