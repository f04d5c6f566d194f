"""The run's stored state (:class:`akhbar.transforms.state.PriorState`) as a Beam side input:
decoded once per process, and weighed without walking it.

Several steps read the stored state (the poll, ``SkipStored``, ``DropExactDuplicates``, the
near-duplicate pass). Beam gives each of them its own copy of a side input: it decodes the
encoded value once per step that reads it, and its state cache weighs each decoded copy by
walking every object it holds (``objsize``). With an output of a million stored articles the
state held two million strings (now packed: see ``packedset``) and the window's near-duplicate
entries: four decoded copies took 2.6 GB, and weighing them took 32 of the 43 seconds of a run
that had nothing new to fetch.

:class:`SharedPrior` changes both:

- it pickles as a token and the pickled state (made once, however often Beam encodes the value);
  unpickling returns the copy this process already holds under that token, if any, without
  decoding the state again (the state's bytes are still read once per step, a copy of a
  buffer). The object the pipeline made is registered under its token too, so a runner that
  executes in the launching process (the ``FnApiRunner`` with one worker) decodes nothing;
- it is a Beam ``CacheAware`` object that names nothing to weigh: the state cache counts it as a
  small object. The state is held for the whole run anyway, by the steps that read it; were it
  weighed at its size, a large output's state would be over the cache's 100 MB, evicted at once
  and decoded again at every bundle.

A process holds the newest state it made or decoded (:data:`KEEP`): nothing else holds it
between the step that makes it and the steps that read it, and without it the first reader
would decode it again. An older one is freed once no step holds it (a streaming job makes one
a cycle).
"""
from __future__ import annotations

import collections
import dataclasses
import pickle
import threading
import uuid
import weakref
from dataclasses import dataclass

from apache_beam.runners.worker.statecache import CacheAware

from akhbar.transforms.state import PriorState

KEEP = 1
_DECODED: weakref.WeakValueDictionary[str, SharedPrior] = weakref.WeakValueDictionary()
_NEWEST: collections.deque[SharedPrior] = collections.deque(maxlen=KEEP)  # held between the steps that read it
_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class SharedPrior(PriorState, CacheAware):
    """A :class:`PriorState` that travels as a side input (see the module docstring)."""

    token: str = ""

    def get_referents_for_cache(self) -> list:
        return []  # weighed as a small object: see the module docstring

    def __reduce__(self):
        blob = self.__dict__.get("_pickled")
        if blob is None:
            blob = pickle.dumps(_fields(self), protocol=pickle.HIGHEST_PROTOCOL)
            object.__setattr__(self, "_pickled", blob)  # a cache, not a field: frozen still holds
        return _restore, (self.token, blob)


def _register(state: SharedPrior) -> SharedPrior:
    with _LOCK:
        kept = _DECODED.setdefault(state.token, state)
        if not any(held is kept for held in _NEWEST):  # by identity: equal states are not the same copy
            _NEWEST.append(kept)
        return kept


def _restore(token: str, blob: bytes) -> SharedPrior:
    with _LOCK:
        found = _DECODED.get(token)
    if found is not None:
        return found
    return _register(SharedPrior(**pickle.loads(blob), token=token))


def _fields(state: PriorState) -> dict:
    """The :class:`PriorState` fields of ``state`` (not a :class:`SharedPrior`'s token)."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(PriorState)}


def shared_prior(state: PriorState) -> SharedPrior:
    """``state`` as a side input value: a new token, registered in this process."""
    return _register(SharedPrior(**_fields(state), token=uuid.uuid4().hex))
