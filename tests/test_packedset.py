"""PackedSet: the stored ids and content hashes as one sorted array, behaving as a set of str."""
import hashlib
import pickle

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from akhbar.transforms.packedset import GrowingSet, PackedSet

IDS = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(50)]


def test_hex_ids_from_arrow_columns_are_taken_from_the_buffers_and_found():
    column = pa.chunked_array([pa.array(IDS[:20]), pa.array(IDS[20:])])
    packed = PackedSet.of(column)
    assert isinstance(packed, PackedSet) and len(packed) == 50 and packed == set(IDS)
    assert all(i in packed for i in IDS)
    assert IDS[0][:31] not in packed and IDS[0] + "0" not in packed and "" not in packed
    assert 12 not in packed and None not in packed and b"x" not in packed


def test_a_slice_nulls_and_large_strings_are_read_as_written():
    sliced = pa.array(IDS)[5:15]  # an array whose values start at an offset into its buffers
    assert PackedSet.of(sliced) == set(IDS[5:15])
    assert PackedSet.of(pa.array([IDS[0], None, IDS[1]])) == {IDS[0], IDS[1]}
    assert PackedSet.of(pa.array(IDS[:3], pa.large_string())) == set(IDS[:3])


def test_strings_of_different_lengths_and_a_union_of_parts():
    words = ["h1", "h22", "", "كييف", "ناتو"]
    packed = PackedSet.of(pa.array(words[:3]), words[3:], PackedSet.of(["h1", "x" * 70]))
    assert packed == set(words) | {"x" * 70}
    assert "كييف" in packed and "h2" not in packed and "h222" not in packed
    assert sorted(packed) == sorted(set(words) | {"x" * 70})
    assert PackedSet.of() == frozenset() and PackedSet.of(pa.array([], pa.string()), []) == set()


def test_a_string_holding_nul_makes_a_plain_frozenset():
    mixed = PackedSet.of(pa.array(["a\x00b"]), ["c"])
    assert isinstance(mixed, frozenset) and mixed == {"a\x00b", "c"}
    assert "a\x00b" not in PackedSet.of(["ab"])
    assert isinstance(PackedSet.of(["\ud800", "c"]), frozenset)  # a lone surrogate has no UTF-8
    assert "\ud800" not in PackedSet.of(["a"])


def test_pickled_as_one_buffer_and_set_operators_give_frozensets():
    packed = PackedSet.of(IDS)
    again = pickle.loads(pickle.dumps(packed))
    assert isinstance(again, PackedSet) and again == packed and hash(again) == hash(packed)
    assert len(pickle.dumps(packed)) < 50 * 32 + 500
    assert packed & {IDS[0], "nope"} == {IDS[0]} and isinstance(packed & {IDS[0]}, frozenset)
    assert not packed - set(IDS) and (packed | {"new"}) == set(IDS) | {"new"}


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=12), max_size=40),
       st.lists(st.text(max_size=12), max_size=10))
def test_behaves_as_the_set_of_its_strings(values, probes):
    packed = PackedSet.of(pa.array(values[: len(values) // 2], pa.string()), values[len(values) // 2:])
    assert packed == set(values) and len(packed) == len(set(values))
    for probe in probes + values:
        assert (probe in packed) == (probe in set(values))


def test_a_growing_set_adds_beside_the_packed_ids():
    stored = GrowingSet(PackedSet.of(IDS[:10]))
    assert IDS[0] in stored and IDS[10] not in stored and len(stored) == 10
    stored.update([IDS[10], IDS[0]])
    assert IDS[10] in stored and len(stored) == 11 and stored == set(IDS[:11])
    assert isinstance(stored.base, PackedSet)  # the packed ids were not turned back into strings
