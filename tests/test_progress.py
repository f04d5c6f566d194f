"""Live progress: plain lines off a terminal, one redrawn line on a terminal (a real pty),
final figures equal to what the run wrote. Runs are real Beam runs over the sample site."""
from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
import time

import pytest
from akhbar.pipelines.cli import main
from akhbar.pipelines.summary import beam_counters
from akhbar.pipelines.progress import (
    Progress,
    figures,
    live_counts_visible,
    merged,
)
from akhbar.transforms import tally

from akhbar.sample.site import sources_yaml

FINAL = re.compile(r"feeds polled (\d+)/(\d+), entries (\d+), pages fetched (\d+), articles (\d+), "
                   r"rows written (\d+), failures (\d+) \(\d+ s\)")


def test_figures_from_counters():
    f = figures({"poll.polled": 3, "poll.skipped_backoff": 1, "poll.entries": 40, "fetch.pages": 30,
                 "extract.articles": 28, "write.articles_rows": 25, "poll.dead.http_500": 1,
                 "fetch.dead.http_404": 2, "extract.dead.empty_body": 1, "write.unsafe_partition": 1,
                 "dedup.already_stored": 9}, feeds_total=5, seconds=12.4)
    assert f.text() == ("feeds polled 3/5 (+1 backed off), entries 40, pages fetched 30, articles 28, "
                        "rows written 25, failures 5 (12 s)")
    assert figures({}, 5, 1.0).text().startswith("feeds polled 0/5, entries 0")
    hidden = figures({}, 5, 3.0, live=False)  # multi_processing workers: nothing to show until the end
    assert not hidden.counted and hidden.text() == "running (3 s); counts at the end: the workers are other processes"
    assert figures({"poll.polled": 5}, 5, 9.0, live=False).text().startswith("feeds polled 5/5")
    assert live_counts_visible([]) and live_counts_visible(["--direct_running_mode", "multi_threading"])
    assert not live_counts_visible(["--direct_running_mode=multi_processing", "--direct_num_workers", "2"])
    assert merged({"a": 2, "b": 5}, {"a": 3}) == {"a": 3, "b": 5}


def test_plain_lines_and_tty_line():
    out = io.StringIO()
    p = Progress(4, stream=out, tty=False, interval=0.05).start()
    tally.count("poll.polled", 4)
    tally.count("write.articles_rows", 7)
    time.sleep(0.3)
    final = p.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("akhbar: progress: ") for line in lines[:-1])
    assert lines[-1].startswith("akhbar: finished: feeds polled 4/4") and "rows written 7" in lines[-1]
    assert (final.feeds_polled, final.rows_written) == (4, 7)
    assert "\r" not in out.getvalue()

    term = io.StringIO()
    p = Progress(2, stream=term, tty=True).start()  # start() forgets the earlier counts
    tally.count("poll.polled")
    time.sleep(0.7)
    p.stop()
    text = term.getvalue()
    assert text.startswith("\rakhbar: feeds polled 0/2") and text.count("\r") >= 3 and "\x1b[K" in text
    assert text.endswith("feeds polled 1/2, entries 0, pages fetched 0, articles 0, rows written 0, failures 0 (1 s)"
                         "\x1b[K\n") or text.endswith("(0 s)\x1b[K\n")
    assert text.count("\n") == 1


@pytest.fixture()
def sources_file(sample_site, tmp_path):
    p = tmp_path / "sources.yaml"
    p.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    return p


def test_run_prints_progress_lines_with_the_final_numbers(sources_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--allow-private-hosts",
                 "--host-interval", "0", "--progress-interval", "0.2"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("akhbar: ")]
    progress = [line for line in lines if line.startswith("akhbar: progress: ")]
    finished = [line for line in lines if line.startswith("akhbar: finished: ")]
    assert progress and len(finished) == 1 and lines.index(finished[0]) > lines.index(progress[-1])
    feeds, total, entries, pages, articles, rows, failures = map(int, FINAL.search(finished[0]).groups())
    (report,) = (out / "_reports").iterdir()
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert (feeds, total) == (8, 8) and rows == summary["articles_written"] == 15
    assert failures == summary["dead_letters"] == 4
    c = summary["counters"]
    # fetch counts happen in the fetch pool's threads: Beam's metrics must have them too
    assert (entries, pages, articles) == (c["poll.entries"], c["fetch.pages"], c["extract.articles"])
    assert c["fetch.dead.http_404"] == c["fetch.dead.unsupported_content_type"] == 1
    # every fetched page was extracted or became an extract dead letter
    assert pages == articles + sum(n for k, n in summary["dead_letters_by_reason"].items() if k.startswith("extract/"))
    # figures only grow from line to line
    seen = [tuple(map(int, m.groups()[2:])) for m in map(FINAL.search, progress + finished) if m]
    assert all(all(a <= b for a, b in zip(x, y)) for x, y in zip(seen, seen[1:]))

    # --quiet: no progress, no summary; only the output path on stdout
    assert main(["run", "--sources", str(sources_file), "--output", str(out), "--allow-private-hosts",
                 "--host-interval", "0", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "akhbar: " not in captured.err and captured.out == f"{out}\n"


def test_progress_on_a_terminal(sources_file, tmp_path):
    """stderr is a pseudo-terminal: one line redrawn with \\r, ended by the final figures."""
    out = tmp_path / "out"
    env = dict(os.environ, COLUMNS="250", NO_GCE_CHECK="true", GCE_METADATA_HOST="127.0.0.1:9",
               GCE_METADATA_IP="127.0.0.1:9", GCE_METADATA_ROOT="127.0.0.1:9")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "akhbar", "run", "--sources", str(sources_file), "--output",
                             str(out), "--allow-private-hosts", "--host-interval", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "wrote 15 article rows" in stdout
    drawn = [s for s in text.split("\r") if s.startswith("akhbar: feeds polled")]
    assert len(drawn) >= 2 and "\x1b[K" in text
    m = FINAL.search(drawn[-1])
    assert m and drawn[-1].endswith("\x1b[K") and drawn[-1] + "\r\n" in text  # the terminal maps \n to \r\n
    feeds, total, _, _, _, rows, failures = map(int, m.groups())
    assert (feeds, total, rows, failures) == (8, 8, 15, 4)
    assert "akhbar: progress: " not in text  # no plain log lines on a terminal


def test_counts_read_from_a_pipeline_result():
    """What a runner reports in its result (Dataflow while the job runs, any runner at the end)
    is read too; each figure is the larger of the two readings."""
    import apache_beam as beam

    class Counting(beam.DoFn):
        def process(self, x):
            tally.count("fetch.pages")
            yield x

    # the FnApiRunner, named: "DirectRunner" would first try to download the Prism runner from
    # GitHub, a request off this machine (see conftest.py)
    p = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner", "FnApiRunner"]))
    _ = p | beam.Create(range(7)) | beam.ParDo(Counting())
    out = io.StringIO()
    progress = Progress(1, stream=out, tty=False, interval=60).start()
    result = p.run()
    result.wait_until_finish()
    tally.reset()  # as if the steps had run in other processes
    progress.attach(result)
    assert beam_counters(result) == {"fetch.pages": 7}
    assert progress.stop().pages == 7 and "pages fetched 7" in out.getvalue()
