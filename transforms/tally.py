"""Counting what the pipeline does: Beam metrics plus a process-local running total.

:func:`count` increments the Beam counter ``akhbar/NAME`` (what runners aggregate and what the
end-of-run summary reads) and the same name in a running total kept in this process, which the
CLI's live progress line reads while the pipeline runs (``akhbar.pipelines.progress``).

The running total is for display only: nothing the pipeline writes depends on it. It sees the
steps that run in this process (the DirectRunner's default in-memory and multi-threaded modes);
workers in other processes (``--direct_running_mode multi_processing``, Dataflow) keep their
own, unseen totals. It counts attempts: a bundle Beam retries is counted again.
"""
from __future__ import annotations

import threading
from collections import Counter

from apache_beam.metrics import Metrics

NAMESPACE = "akhbar"
_lock = threading.Lock()
_totals: Counter = Counter()


# Beam's counter objects, one per name: making one costs four times what incrementing it does,
# and it finds the running step's metrics only when incremented, so one object serves every step.
_counters: dict = {}


def count(name: str, n: int = 1) -> None:
    counter = _counters.get(name)
    if counter is None:
        counter = _counters.setdefault(name, Metrics.counter(NAMESPACE, name))
    counter.inc(n)
    with _lock:
        _totals[name] += n


def totals() -> dict[str, int]:
    """A copy of this process's running totals."""
    with _lock:
        return dict(_totals)


def reset() -> None:
    with _lock:
        _totals.clear()
