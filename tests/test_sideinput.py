"""The stored state as a side input: one decoded copy per process, weighed as a small object."""
import gc
import pickle
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np
from apache_beam.runners.worker.statecache import StateCache, get_deep_size

from akhbar.transforms import sideinput, steps
from akhbar.transforms.dedup import IndexEntry, NearDupConfig
from akhbar.transforms.sideinput import SharedPrior, shared_prior
from akhbar.transforms.state import PriorState

WHEN = datetime(2026, 11, 30, tzinfo=timezone.utc)


def _state(n: int) -> PriorState:
    entries = tuple((IndexEntry(f"id{i}", f"id{i}", bytes(512), 3, np.array([1, 2, 3], dtype=np.uint32), "s", WHEN),
                     WHEN) for i in range(min(n, 1000)))
    return PriorState(frozenset(f"id{i:08d}" for i in range(n)), frozenset(f"h{i:08d}" for i in range(n)), entries,
                      frozenset({"https://ex.com/gone"}))


def test_unpickled_in_the_process_that_made_it_is_the_same_object():
    state = shared_prior(_state(10))
    blob = pickle.dumps(state)
    assert pickle.loads(blob) is state
    assert pickle.loads(pickle.dumps([state]))[0] is state  # as Beam encodes it: inside an iterable


def test_another_process_decodes_it_once_and_every_later_read_shares_that_copy(tmp_path):
    state = shared_prior(_state(50))
    (tmp_path / "state.pickle").write_bytes(pickle.dumps(state))
    script = (
        "import pickle, sys\n"
        "blob = open(sys.argv[1], 'rb').read()\n"
        "a, b = pickle.loads(blob), pickle.loads(blob)\n"
        "assert a is b, 'decoded twice'\n"
        "print(len(a.article_ids), len(a.content_hashes), len(a.recent), sorted(a.given_up), a.token)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "state.pickle")], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["50", "50", "50", "['https://ex.com/gone']", state.token]


def test_the_copy_is_equal_to_the_state_it_came_from():
    plain = _state(20)
    state = shared_prior(plain)
    token = state.token
    with sideinput._LOCK:  # as in a process that has not seen this state yet
        sideinput._DECODED.pop(token)
        sideinput._NEWEST.clear()
    copy = pickle.loads(pickle.dumps(state))
    assert copy is not state and isinstance(copy, PriorState) and copy.token == token
    assert (copy.article_ids, copy.content_hashes, copy.recent, copy.given_up) == (
        plain.article_ids, plain.content_hashes, plain.recent, plain.given_up)


def test_states_no_step_holds_are_freed_once_newer_ones_are_made():
    first = shared_prior(_state(5))
    token = first.token
    del first
    for _ in range(sideinput.KEEP):
        shared_prior(_state(5))
    gc.collect()
    assert token not in sideinput._DECODED


def test_beams_state_cache_weighs_it_as_a_small_object_and_keeps_it():
    big = shared_prior(_state(200_000))
    started = time.perf_counter()
    weight = get_deep_size([big])
    assert weight < 10_000 and time.perf_counter() - started < 0.5
    # the plain state would be weighed at tens of MB (and walked, object by object, to find out)
    assert get_deep_size(PriorState(big.article_ids)) > 10_000_000
    cache = StateCache(1 << 20)  # 1 MB: a state weighed at its size would be evicted at once
    assert cache.get("prior", lambda _: [big])[0] is big
    assert cache.peek("prior")[0] is big


def test_the_near_duplicate_pass_builds_no_index_when_nothing_is_new():
    class NoIndex(PriorState):
        def index(self, config):
            raise AssertionError("the index was built for no new article")

    assert steps.near_duplicate_assignments([], NoIndex(), NearDupConfig()) == {}
    assert isinstance(shared_prior(PriorState()), SharedPrior)
