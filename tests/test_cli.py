"""The command line: docs/cli.md matches the parser, help reads well, and user mistakes end
with exit code 2 and one message, never a Python traceback (the CLI run as a subprocess)."""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from akhbar.pipelines import cli
from akhbar.pipelines.clidoc import _subcommands, cli_reference_markdown

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, NO_GCE_CHECK="true", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9",
           GCE_METADATA_ROOT="127.0.0.1:9", COLUMNS="100")


def leaves(ap=None, path=()):
    """(path, parser) of every command that takes options (not a group of subcommands)."""
    ap = ap or cli._parser()
    subs = _subcommands(ap)
    if not subs:
        yield " ".join(path), ap
    for name, _, sub in subs:
        yield from leaves(sub, (*path, name))


def test_docs_cli_md_matches_the_parser():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert text == cli_reference_markdown(), "regenerate: python -m akhbar.pipelines.clidoc > docs/cli.md"
    for path, _ in leaves():
        assert f"## akhbar {path}\n" in text
    assert "docs/cli.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_has_a_description_examples_and_named_values():
    paths = []
    for path, ap in leaves():
        paths.append(path)
        assert ap.description and ap.description[0].isupper(), path
        assert cli.EXAMPLES.get(path), f"no examples for akhbar {path}"
        for action in ap._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"akhbar {path} {action.option_strings or action.dest}: no help"
            if action.nargs != 0 and not action.choices:
                # a named value (FILE, N, SECONDS…), not argparse's upper-cased dest (FETCH_CONCURRENCY)
                assert action.metavar, f"akhbar {path} {action.option_strings or action.dest}: no metavar"
    assert sorted(paths) == sorted(["run", "sources validate", "sources health", "sources probe", "sample",
                                    "replay", "compact", "report", "classify train"])


def test_examples_parse():
    """Every example shown in --help is a valid command line (options unknown to akhbar are Beam's)."""
    for path, examples in cli.EXAMPLES.items():
        for example in examples:
            argv = example.split()[1:]
            _, rest = cli._parser().parse_known_args(argv)
            assert " ".join(argv[: len(path.split())]) == path
            assert cli._check_beam_args(rest) is None, example


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "akhbar", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_help_of_every_command(tmp_path):
    commands = [[], *([*path.split()] for path, _ in leaves()), ["sources"], ["classify"]]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: run_cli([*c, "--help"], tmp_path), commands))
    for command, r in zip(commands, results):
        assert r.returncode == 0 and "Traceback" not in r.stderr, (command, r.stderr)
        assert r.stdout.startswith(f"usage: akhbar {' '.join(command)}".rstrip()), command
    top = results[0].stdout
    assert "exit codes:" in top and "130" in top and "COMMAND" in top
    assert "examples:\n  akhbar run --sources" in results[1].stdout


GOOD = "sources:\n  - id: a\n    feeds: [http://127.0.0.1:9/feed.xml]\n"


@pytest.fixture()
def mistakes_dir(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("sources:\n  - id: a\n    feeds: [http://x\n  bad: [\n", encoding="utf-8")
    (tmp_path / "invalid.yaml").write_text("sources:\n  - id: Not-Lower\n    feeds: [ftp://x/y]\n", encoding="utf-8")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    (tmp_path / "labels.tsv").write_text("id\tnato\tukraine\n", encoding="utf-8")
    (tmp_path / "texts.jsonl").write_text('{"id": "1", "nato": 1, "ukraine": 0, "title": "الناتو", "body": "x"}\n',
                                          encoding="utf-8")
    lexicon = ("topics:\n  nato:\n    entries:\n      - {term: الناتو, kind: [org], weight: 1}\n"
               "  ukraine:\n    entries:\n      - {term: كييف, kind: place, weight: 1}\n")
    (tmp_path / "kindlist.yaml").write_text(lexicon, encoding="utf-8")
    (tmp_path / "mixedkeys.yaml").write_text("1: x\nfoo: y\n", encoding="utf-8")
    (tmp_path / "deep.yaml").write_text("topics: " + "[" * 5000 + "\n", encoding="utf-8")
    state = tmp_path / "out" / "_state"
    state.mkdir(parents=True)
    (state / "feeds.json").write_text("{}", encoding="utf-8")
    return tmp_path


# (arguments, what the one-line message must say)
MISTAKES = [
    (["run", "--sources", "missing.yaml", "--output", "o"], "missing.yaml: cannot read"),
    (["run", "--sources", ".", "--output", "o"], "cannot read"),
    (["run", "--sources", "broken.yaml", "--output", "o"], "broken.yaml:4: not valid YAML"),
    (["run", "--sources", "binary.yaml", "--output", "o"], "not UTF-8"),
    (["run", "--sources", "invalid.yaml", "--output", "o"], "invalid.yaml:2"),
    (["run", "--sources", "good.yaml", "--output", "afile"], "afile exists and is not a directory"),
    (["run", "--sources", "good.yaml", "--output", "afile/out"], "cannot create directory afile/out"),
    (["run", "--sources", "good.yaml", "--output", "ftp://host/x"], "unsupported output"),
    (["run", "--sources", "good.yaml", "--output", "o", "--lexicon", "nope.yaml"], "lexicon"),
    (["run", "--sources", "good.yaml", "--output", "o", "--lexicon", ""], "lexicon"),
    (["run", "--sources", "good.yaml", "--output", "o", "--lexicon", "kindlist.yaml"], "kindlist.yaml: topics.nato.entries[0]"),
    (["run", "--sources", "good.yaml", "--output", "o", "--lexicon", "mixedkeys.yaml"], "unknown top-level key(s) [1, 'foo']"),
    (["run", "--sources", "good.yaml", "--output", "o", "--lexicon", "deep.yaml"], "deep.yaml: not valid YAML: nested too deeply"),
    (["run", "--sources", "good.yaml", "--output", "o", "--classifier", "nope.joblib"], "no such model file"),
    (["run", "--sources", "good.yaml", "--output", "o", "--classifier", ""], "classifier: : no such model file"),
    (["run", "--sources", "good.yaml", "--output", "o", "--fetch-concurrency", "0"], "--fetch-concurrency must be"),
    (["run", "--sources", "good.yaml", "--output", "o", "--fetch-concurrency", "many"], "invalid int value"),
    (["run", "--sources", "good.yaml", "--output", "o", "--fetch-concurency", "4"], "unknown option(s): --fetch-concurency"),
    (["run", "--sources", "good.yaml", "--output", "o", "--runner", "NoSuchRunner"], "--runner NoSuchRunner"),
    (["run", "--output", "o"], "the following arguments are required: --sources"),
    (["sources", "validate", "missing.yaml"], "cannot read"),
    (["sources", "validate", "invalid.yaml"], "must be lowercase"),
    (["sources", "probe"], "needs a feed URL"),
    (["sources", "probe", "ftp://host/feed.xml"], "is not an http(s) URL"),
    (["sources", "probe", "--source", "zz", "--sources", "good.yaml"], "no source 'zz'"),
    (["sources", "probe", "--source", "a", "--sources", "good.yaml", "--save-fixture", "afile"], "--save-fixture"),
    (["sources", "health", "nowhere"], "no feed state under nowhere"),
    (["report", "nowhere"], "nothing to report"),
    (["report", "out", "--since", "2024-13-01"], "is not a YYYY-MM-DD date"),
    (["report", "out", "--since", "2024-02-01", "--until", "2024-01-01"], "--since is after --until"),
    (["report", "out", "--out", "out"], "is a directory"),
    (["report", "out", "--out", "nofolder/r.html"], "does not exist"),
    (["replay", "nowhere", "--sources", "good.yaml"], "no output at nowhere"),
    (["replay", "out", "--sources", "good.yaml", "--until", "yesterday"], "is not a YYYY-MM-DD date"),
    (["compact", "afile"], "is not a directory"),
    (["compact", "out", "--partition", "../x"], "--partition"),
    (["sample", "--port", "99999"], "is not a port number"),
    (["classify", "train", "--labels", "labels.tsv", "--out", "out"], "is a directory"),
    (["classify", "train", "--labels", "missing.tsv", "--out", "m.joblib"], "missing.tsv"),
    (["classify", "train", "--labels", "texts.jsonl", "--out", "m.joblib", "--lexicon", "deep.yaml"], "deep.yaml: not valid"),
    (["classify", "train", "--labels", "texts.jsonl", "--out", "m.joblib", "--lexicon", "kindlist.yaml"], "'kind' must be"),
    (["nosuchcommand"], "invalid choice"),
    ([], "the following arguments are required"),
]


def refused_wrongly(cases: list[tuple[list[str], str]], cwd: Path) -> list[str]:
    """Run each ``(args, needle)`` command; describe those that did not exit 2 with ``needle`` in their
    message and no traceback."""
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda m: run_cli(m[0], cwd), cases))
    return [f"akhbar {' '.join(args)} -> {r.returncode}\n{r.stderr[-1500:]}" for (args, needle), r in zip(cases, results)
            if r.returncode != 2 or "Traceback" in r.stderr or needle not in r.stderr]


def test_user_mistakes_exit_2_without_a_traceback(mistakes_dir):
    failures = refused_wrongly(MISTAKES, mistakes_dir)
    assert not failures, "\n\n".join(failures)
    # nothing was run: no output folders appeared for the refused runs
    assert not (mistakes_dir / "o").exists()


# refusals that need neither Beam nor scikit-learn (over a second each to import) to be told
REFUSED_WITHOUT_IMPORTS = [
    ["run", "--sources", "good.yaml", "--output", "o", "--connect-timeout", "nan"],
    ["run", "--sources", "good.yaml", "--output", "o", "--mode", "streaming", "--window", "0"],
    ["run", "--sources", "good.yaml", "--output", "afile"],
    ["run", "--sources", "good.yaml", "--output", "o", "--lexicon", "kindlist.yaml"],
    ["run", "--sources", "good.yaml", "--output", "o", "--classifier", "nope.joblib"],
    ["replay", "out", "--sources", "good.yaml", "--reason", "timout"],
    ["classify", "train", "--labels", "texts.jsonl", "--out", "m.joblib", "--lexicon", "kindlist.yaml"],
    ["classify", "train", "--labels", "labels.tsv", "--out", "m.joblib"],
]


def test_a_mistake_is_refused_before_beam_or_scikit_learn_is_imported(mistakes_dir):
    script = ("import json, sys\nfrom akhbar.pipelines.cli import main\n"
              f"codes = [main(args) for args in {REFUSED_WITHOUT_IMPORTS!r}]\n"
              "print(json.dumps([codes, [m for m in ('apache_beam', 'sklearn') if m in sys.modules]]))")
    r = subprocess.run([sys.executable, "-c", script], cwd=mistakes_dir, env=ENV, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    codes, imported = json.loads(r.stdout.splitlines()[-1])
    assert codes == [2] * len(REFUSED_WITHOUT_IMPORTS), r.stderr
    assert imported == [], r.stderr


def test_busy_port_falls_back_to_a_free_one(tmp_path, capsys):
    """`akhbar sample --port N` with N taken says so and serves on a free port instead."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = tmp_path / "sample"
        assert cli.main(["sample", "--port", str(port), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"port {port} cannot be used" in captured.err and "using a free port instead" in captured.err
    assert "wrote 15 article rows" in captured.out


def test_multi_threading_gets_a_note_and_the_other_modes_do_not():
    note = cli.runner_note(["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    assert note and "multi_processing" in note
    assert cli.runner_note(["--direct_num_workers=2", "--direct_running_mode=multi_processing"]) is None
    assert cli.runner_note([]) is None
