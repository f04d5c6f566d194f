"""Live progress of a run: feeds polled, pages fetched, rows written, failures.

On a terminal (stderr is a TTY) one line is redrawn in place twice a second; anywhere else
(cron, systemd, CI, a pipe) a plain line is printed every ``interval`` seconds (default 10),
so a log shows how a long run advanced. Both end with a final line of the totals.

Where the numbers come from. Every step counts through :func:`akhbar.transforms.tally.count`,
which increments a Beam counter and a running total in the same process. While the pipeline
runs, this module reads

- the running totals of this process: Beam's DirectRunner runs the steps in the launching
  process by default (``--direct_running_mode in_memory`` or ``multi_threading``), so the line
  moves as feeds, pages and rows are done;
- the pipeline result's Beam metrics, once :meth:`Progress.attach` is given a result while the
  pipeline is still running: runners whose ``run()`` returns at once (Dataflow) report
  attempted counters from their workers while the job runs.

Each figure is the larger of the two readings, since both count the same events. With
``--direct_running_mode multi_processing`` the workers are other processes and ``run()``
returns only at the end: the line then shows the elapsed time only, and the final line
(read from Beam's metrics of the finished run) has the exact totals.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from akhbar.pipelines.summary import beam_counters
from akhbar.transforms import tally

TTY_REFRESH = 0.5
DEFAULT_INTERVAL = 10.0


@dataclass(frozen=True)
class Figures:
    feeds_polled: int
    feeds_total: int
    feeds_backed_off: int
    entries: int
    pages: int
    articles: int
    rows_written: int
    failures: int
    seconds: float
    counted: bool = True  # False: no count can reach this process before the end

    def text(self) -> str:
        if not self.counted:
            return f"running ({self.seconds:.0f} s); counts at the end: the workers are other processes"
        backed = f" (+{self.feeds_backed_off} backed off)" if self.feeds_backed_off else ""
        return (f"feeds polled {self.feeds_polled}/{self.feeds_total}{backed}, entries {self.entries}, "
                f"pages fetched {self.pages}, articles {self.articles}, rows written {self.rows_written}, "
                f"failures {self.failures} ({self.seconds:.0f} s)")


def figures(counters: dict[str, int], feeds_total: int, seconds: float, live: bool = True) -> Figures:
    """The progress figures from counter totals of the ``akhbar`` namespace."""
    c = counters.get
    failures = sum(n for name, n in counters.items() if ".dead." in name) + c("write.unsafe_partition", 0)
    return Figures(
        feeds_polled=c("poll.polled", 0), feeds_total=feeds_total, feeds_backed_off=c("poll.skipped_backoff", 0),
        entries=c("poll.entries", 0), pages=c("fetch.pages", 0), articles=c("extract.articles", 0),
        rows_written=c("write.articles_rows", 0), failures=failures, seconds=seconds,
        counted=live or bool(counters),
    )


def live_counts_visible(beam_args: list[str]) -> bool:
    """False when Beam's options put the DirectRunner's workers in other processes."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    try:
        mode = PipelineOptions(beam_args or []).view_as(DirectOptions).direct_running_mode
    except Exception:  # noqa: BLE001 - options Beam rejects fail later, with Beam's own message
        return True
    return mode != "multi_processing"


def merged(*readings: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for reading in readings:
        for name, n in reading.items():
            out[name] = max(out.get(name, 0), n)
    return out


class Progress:
    """Shows a run's progress on ``stream`` (default: ``sys.stderr`` at :meth:`start`) until :meth:`stop`.

    ``tty``: draw one updating line (default: whether the stream is a terminal).
    ``interval``: seconds between plain lines when not a terminal.
    ``live``: whether counts can reach this process while the run goes on (see :func:`live_counts_visible`).
    """

    def __init__(self, feeds_total: int, stream=None, tty: bool | None = None,
                 interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic, live: bool = True):
        self.feeds_total = feeds_total
        self.live = live
        self._stream = stream
        self._tty = tty
        self.interval = max(0.05, interval)
        self._clock = clock
        self._result = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------------

    def attach(self, result) -> None:
        """A Beam pipeline result whose metrics are read too (see the module docstring)."""
        self._result = result

    def current(self) -> Figures:
        readings = [tally.totals()]
        if self._result is not None:
            readings.append(beam_counters(self._result))
        return figures(merged(*readings), self.feeds_total, self._clock() - self._started, self.live)

    # -- drawing ---------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break the run
            pass

    def _draw(self, final: bool = False) -> None:
        f = self.current()
        if self.tty:
            columns = shutil.get_terminal_size((100, 20)).columns
            line = f"akhbar: {f.text()}"[: max(20, columns - 1)]
            self._write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        elif final:
            self._write(f"akhbar: finished: {f.text()}\n")
        else:
            self._write(f"akhbar: progress: {f.text()}\n")

    def _loop(self) -> None:
        every = TTY_REFRESH if self.tty else self.interval
        while not self._stop.wait(every):
            self._draw()

    def start(self) -> Progress:
        self.stream = self._stream if self._stream is not None else sys.stderr
        if self._tty is None:
            try:
                self.tty = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                self.tty = False
        else:
            self.tty = self._tty
        tally.reset()  # counts of an earlier run in this process are not this run's
        self._started = self._clock()
        if self.tty:
            self._draw()
        self._thread = threading.Thread(target=self._loop, name="akhbar-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Figures:
        """Stop redrawing and print the final line; returns the final figures."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._draw(final=True)
        return self.current()

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
