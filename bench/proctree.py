"""Memory of a benchmarked process and everything it started, read from /proc (Linux)."""
from __future__ import annotations

import os


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (worker processes of a multi-process runner included)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:  # the process ended meanwhile
            pass
    return pids


def rss_kb(pid: int) -> int:
    """Resident memory of one process in KiB (0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid: int) -> list[int]:
    """Resident memory of each process of ``pid``'s tree, in KiB."""
    return [rss_kb(p) for p in tree(pid)]
