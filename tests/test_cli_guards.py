"""Values and paths the CLI must refuse before anything runs, and damaged output it must name
instead of ending in a traceback (the CLI run as a subprocess, against real files and the sample
site on 127.0.0.1)."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from akhbar.pipelines.cli import main
from akhbar.pipelines.summary import duckdb_command
from akhbar.transforms.schedule import load_schedule
from akhbar.sample.site import sources_yaml
from tests.conftest import ingest_sample
from tests.test_cli import ENV, GOOD, refused_wrongly, run_cli
from tests.test_e2e import read_articles


@pytest.fixture()
def guard_dir(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "ipv6.yaml").write_text('sources:\n  - id: a\n    feeds: ["http://[::1/rss"]\n', encoding="utf-8")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    for name, content in (("bad_json", "{bad"), ("a_list", "[1,2]")):
        (tmp_path / name / "_state").mkdir(parents=True)
        (tmp_path / name / "_state" / "feeds.json").write_text(content, encoding="utf-8")
    (tmp_path / "a_dir" / "_state" / "feeds.json").mkdir(parents=True)
    (tmp_path / "out" / "dead_letter").mkdir(parents=True)
    return tmp_path


RUN = ["run", "--sources", "good.yaml", "--output", "o"]
# (arguments, what the one-line message must say)
REFUSED = [
    ([*RUN, "--connect-timeout", "nan"], "--connect-timeout must be a finite number, not nan"),
    ([*RUN, "--read-timeout", "inf"], "--read-timeout must be a finite number, not inf"),
    ([*RUN, "--total-timeout=-inf"], "--total-timeout must be a finite number"),
    ([*RUN, "--dedup-window-days", "nan"], "--dedup-window-days must be a finite number"),
    ([*RUN, "--dedup-window-days", "inf"], "--dedup-window-days must be a finite number"),
    ([*RUN, "--dedup-window-days", "1000000"], "--dedup-window-days must be at most 3650"),
    ([*RUN, "--give-up-after", "nan"], "--give-up-after must be a finite number"),
    ([*RUN, "--give-up-after=-1"], "--give-up-after must be at least 0"),
    (["sources", "health", "out", "--give-up-after=-1"], "--give-up-after must be at least 0"),
    (["sources", "health", "out", "--dedup-window-days", "inf"], "--dedup-window-days must be a finite number"),
    (["report", "out", "--give-up-after", "1e9"], "--give-up-after must be at most 87600"),
    ([*RUN, "--host-interval", "nan"], "--host-interval must be a finite number"),
    ([*RUN, "--progress-interval", "nan"], "--progress-interval must be a finite number"),
    ([*RUN, "--max-bytes", "99999999999999"], "--max-bytes must be at most"),
    ([*RUN, "--user-agent", "عربي"], "--user-agent must be 1 to 512 printable ASCII characters"),
    ([*RUN, "--user-agent", "a\r\nX-Injected: 1"], "--user-agent must be 1 to 512 printable ASCII characters"),
    ([*RUN, "--user-agent", ""], "--user-agent must be"),
    ([*RUN, "--mode", "streaming", "--duration", "nan"], "--duration must be a finite number"),
    ([*RUN, "--mode", "streaming", "--duration", "inf"], "--duration must be a finite number"),
    ([*RUN, "--mode", "streaming", "--window", "0"], "--window must be positive"),
    ([*RUN, "--mode", "streaming", "--state-ttl", "nan"], "--state-ttl must be a finite number"),
    ([*RUN, "--direct_num_workers", "-2"], "--direct_num_workers must be from 0"),
    (["run", "--sources", "good.yaml", "--output", ""], "the output path is empty"),
    (["run", "--sources", "good.yaml", "--output", "dangling"], "dangling is a symbolic link to"),
    (["run", "--sources", "good.yaml", "--output", "dangling/sub"], "is a symbolic link to"),
    (["run", "--sources", "ipv6.yaml", "--output", "o"], "ipv6.yaml:2: sources[0] (id: a): feed 'http://[::1/rss' "
                                                         "is not a valid URL"),
    (["sources", "validate", "ipv6.yaml"], "is not a valid URL"),
    (["sources", "probe", "http://[::1/rss"], "is not a valid URL: Invalid IPv6 URL"),
    (["sources", "probe", "http://x.example:abc/rss"], "Port could not be cast to integer"),
    (["sources", "probe", "http://x.example/a b"], "is not an http(s) URL without spaces"),
    (["sources", "probe", "--source", "a", "--sources", "good.yaml", "--articles", "-1"], "--articles must be at least 0"),
    (["sources", "health", "gs://"], "gs:// output needs a bucket"),
    (["sources", "health", "http://127.0.0.1:9/x"], "unsupported output"),
    (["sources", "health", "bad_json"], "bad_json/_state/feeds.json is not a readable feed-state file"),
    (["sources", "health", "a_list"], "a_list/_state/feeds.json is not a readable feed-state file"),
    (["sources", "health", "a_dir"], "a_dir/_state/feeds.json is a directory"),
    (["report", "bad_json", "--out", "r.html"], "bad_json/_state/feeds.json is not a readable feed-state file"),
    (["report", "out", "--out", "http://127.0.0.1:9/r.html"], "--out 'http://127.0.0.1:9/r.html': use a local file"),
    (["report", "http://127.0.0.1:9/x"], "unsupported output"),
    (["report", "out", "--out", ""], "--out is empty"),
    (["replay", "out", "--sources", "good.yaml", "--progress-interval", "0"], "--progress-interval must be at least"),
    (["replay", "out", "--sources", "good.yaml", "--progress-interval", "nan"], "--progress-interval must be a finite"),
    (["replay", "out", "--sources", "good.yaml", "--since", "2026-02-01", "--until", "2026-01-01"],
     "--since is after --until"),
    (["replay", "out", "--sources", "good.yaml", "--reason", "timout"], "unknown --reason 'timout': the codes are"),
    (["compact", "out", "--min-files", "0"], "--min-files must be at least 1"),
]


def test_bad_values_and_paths_exit_2_before_anything_runs(guard_dir):
    failures = refused_wrongly(REFUSED, guard_dir)
    assert not failures, "\n\n".join(failures)
    assert not (guard_dir / "o").exists() and not (guard_dir / "nowhere").exists()
    assert (guard_dir / "bad_json" / "_state" / "feeds.json").read_text() == "{bad"  # health and report touch nothing


def test_a_closed_pipe_keeps_the_exit_code(guard_dir):
    """`akhbar sources validate bad.yaml 2>&1 | head -1` must still fail: the reader leaving is no success."""
    (guard_dir / "many.yaml").write_text("sources:\n" + "".join(f"  - id: BAD{i}\n    feeds: [http://a.example/{i}]\n"
                                                                 for i in range(2000)), encoding="utf-8")
    for args, code in ((["sources", "validate", "many.yaml"], 2), (["sources", "validate", "good.yaml"], 0)):
        read, write = os.pipe()
        os.close(read)  # the reader has gone before the first line
        try:
            r = subprocess.run([sys.executable, "-m", "akhbar", *args], cwd=guard_dir, env=ENV, stdout=write,
                               stderr=write, stdin=subprocess.DEVNULL, timeout=120)
        finally:
            os.close(write)
        assert r.returncode == code, args


@pytest.fixture(scope="module")
def stored(sample_site, tmp_path_factory):
    return ingest_sample(sample_site, tmp_path_factory.mktemp("guards"))


def copy_of(stored, tmp_path):
    src, out = stored
    shutil.copytree(out, tmp_path / "out")
    return src, tmp_path / "out"


@pytest.mark.parametrize("damage", ["{bad", "[1,2]", '{"feeds": [{"feed_url": "x", "last_attempt": "soon"}]}', "dir"])
def test_run_sets_an_unreadable_feed_state_aside_and_writes_nothing_twice(stored, tmp_path, capsys, damage):
    src, out = copy_of(stored, tmp_path)
    state = out / "_state" / "feeds.json"
    rows_before = len(read_articles(out))
    state.unlink()
    if damage == "dir":
        state.mkdir()
    else:
        state.write_text(damage, encoding="utf-8")
    assert main(["run", "--sources", str(src), "--output", str(out), "--allow-private-hosts", "--host-interval", "0"]) == 0
    captured = capsys.readouterr()
    (aside,) = (out / "_state").glob("feeds.json.corrupt-*")
    assert f"{state}" in captured.err and f"moved it to {aside}" in captured.err
    assert aside.is_dir() if damage == "dir" else aside.read_text(encoding="utf-8") == damage
    assert "wrote 0 article rows" in captured.out and len(read_articles(out)) == rows_before  # the stored index holds
    saved = json.loads(state.read_text(encoding="utf-8"))  # a fresh state, written after the run
    assert len(saved["feeds"]) == 8
    assert main(["sources", "health", str(out)]) == 0


def test_an_unreadable_parquet_file_is_named_not_a_traceback(stored, tmp_path):
    src, out = copy_of(stored, tmp_path)
    (day,) = (out / "dead_letter").iterdir()
    bad_dead = day / "part-broken.parquet"
    bad_dead.write_bytes(b"PAR1x")
    r = run_cli(["replay", str(out), "--sources", str(src), "--allow-private-hosts"], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and f"{bad_dead} is not a readable Parquet" in r.stderr
    r = run_cli(["report", str(out), "--out", str(tmp_path / "r.html")], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and f"{bad_dead} is not a readable Parquet" in r.stderr
    bad_dead.unlink()
    source_dir = next((out / "articles").glob("dt=*/source=*"))
    bad_article = source_dir / "part-broken.parquet"
    bad_article.write_bytes(b"not parquet at all")
    for args in (["report", str(out), "--out", str(tmp_path / "r.html")], ["compact", str(out)]):
        r = run_cli(args, tmp_path)
        assert r.returncode == 1 and "Traceback" not in r.stderr and f"{bad_article}" in r.stderr, (args, r.stderr)


def test_a_damaged_schedule_is_named_when_it_is_dropped(tmp_path, caplog):
    (tmp_path / "_state").mkdir()
    (tmp_path / "_state" / "streaming.json").write_text("[1,2]", encoding="utf-8")
    assert load_schedule(str(tmp_path)) == {}
    assert "streaming.json is not a readable schedule" in caplog.text


def test_the_duckdb_command_works_for_any_output_path(tmp_path):
    out = tmp_path / "it's \"$HOME\" `x`\nhere"  # (a backslash: see the next test)
    part = out / "articles" / "dt=2026-11-30" / "source=a"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"topics": [["nato"], []], "duplicate_of": [None, None]}), part / "p.parquet")
    command = duckdb_command(str(out), sys.executable)
    assert "\n" not in command  # one line to paste
    r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    assert "│ a " in r.stdout or "a" in r.stdout.split("\n")[-3]


def printed_query(stdout: str) -> tuple[str, str | None, str]:
    """The SQL `akhbar run` printed, the folder it says to run it in (None: anywhere) and the
    shell command it printed."""
    lines = stdout.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("Query it with DuckDB"))
    folder = shlex.split(lines[i].split(" cd -- ", 1)[1].removesuffix("):"))[0] if " cd -- " in lines[i] else None
    return lines[i + 1].strip().removesuffix(";"), folder, lines[i + 3].strip()


@pytest.mark.parametrize("name", ["it's [a]*?", "back\\slash it's [a]"])
def test_the_printed_duckdb_query_reads_exactly_the_run_in_any_output_folder(sample_site, tmp_path, capsys,
                                                                                monkeypatch, name):
    import duckdb

    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    out = tmp_path / name
    # a neighbour that the output's name read as a pattern would match too ([a]*? matches "it's ab")
    other = tmp_path / "it's ab" / "articles" / "dt=2026-11-30" / "source=intruder"
    other.mkdir(parents=True)
    pq.write_table(pa.table({"topics": [["nato"]], "duplicate_of": [None]}), other / "p.parquet")
    assert main(["run", "--sources", str(sources), "--output", str(out), "--allow-private-hosts",
                 "--host-interval", "0"]) == 0
    sql, folder, command = printed_query(capsys.readouterr().out)
    rows = read_articles(out)
    expected = sorted((source, sum(1 for r in rows if r["source"] == source),
                       sum(1 for r in rows if r["source"] == source and "nato" in r["topics"]),
                       sum(1 for r in rows if r["source"] == source and "ukraine" in r["topics"]),
                       sum(1 for r in rows if r["source"] == source and r["duplicate_of"]))
                      for source in Counter(r["source"] for r in rows))
    assert len(expected) == 3
    monkeypatch.chdir(folder or tmp_path)
    assert duckdb.connect().execute(sql).fetchall() == expected
    assert (folder is not None) == ("\\" in name) and (folder is None or folder == str(out))
    monkeypatch.chdir(tmp_path)
    r = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    assert all(source in r.stdout for source, *_ in expected) and "intruder" not in r.stdout


# --- gs:// without credentials: refused before anything runs -----------------------------------

NO_CLOUD = ["run", "--sources", "good.yaml", "--output", "gs://akhbar-nowhere/out"]


@pytest.mark.parametrize("args, path", [
    (NO_CLOUD, "gs://akhbar-nowhere/out"),
    ([*NO_CLOUD, "--mode", "streaming", "--duration", "5"], "gs://akhbar-nowhere/out"),
    (["replay", "gs://akhbar-nowhere/out", "--sources", "good.yaml"], "gs://akhbar-nowhere/out"),
    (["sources", "health", "gs://akhbar-nowhere/out"], "gs://akhbar-nowhere/out"),
    (["report", "gs://akhbar-nowhere/out", "--out", "r.html"], "gs://akhbar-nowhere/out"),
    (["report", "out", "--out", "gs://akhbar-nowhere/r.html"], "gs://akhbar-nowhere/r.html"),
])
@pytest.mark.parametrize("key", [None, "missing-key.json"])
def test_gs_without_credentials_is_refused_in_one_line_before_anything_runs(tmp_path, args, path, key):
    """No emulator, no credentials file, no gcloud configuration, no metadata server (its
    variables point at a dead port on 127.0.0.1): the command names the output and how to give
    credentials, exit 2, instead of failing inside Beam (exit 1, a traceback)."""
    pytest.importorskip("google.cloud.storage")
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in ENV.items()
           if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG",
                        "GOOGLE_CLOUD_PROJECT")}
    env.update(HOME=str(tmp_path / "home"), NO_GCE_CHECK="true", GCE_METADATA_HOST="127.0.0.1:9",
               GCE_METADATA_IP="127.0.0.1:9", GCE_METADATA_ROOT="127.0.0.1:9")
    if key:
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / key)
    r = subprocess.run([sys.executable, "-m", "akhbar", *args], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"akhbar: cannot use {path}: no ")
    for needed in ("gcloud auth application-default login", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        assert needed in lines[0]
    if key:
        assert f"{tmp_path / key} was not found" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.yaml", "home", "out"]  # nothing was written
