import dataclasses
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.transforms.dedup import (
    MinHasher,
    NearDupConfig,
    NearDupIndex,
    assign_near_duplicates,
    content_hash,
    jaccard,
    shingles,
)

WIRE = ("أعلن الأمين العام لحلف شمال الأطلسي ينس ستولتنبرغ الخميس أن كييف أقرب من أي وقت مضى إلى عضوية الحلف. "
        "وقال خلال مؤتمر صحفي مع الرئيس الأوكراني فولوديمير زيلينسكي إن أوكرانيا ستصبح عضوا في الحلف. "
        "من جانبه أكد زيلينسكي أن انضمام بلاده إلى الحلف مسألة وقت وطلب المزيد من أنظمة الدفاع الجوي. "
        "وأعلن ستولتنبرغ أن الهجوم المضاد الأوكراني يحقق تقدما تدريجيا رغم القتال الشرس على الجبهة. "
        "ويزور وزيرا الدفاع البريطاني والفرنسي كييف لبحث تقديم المزيد من المساعدات العسكرية. "
        "وتأتي الزيارة قبيل انعقاد منتدى الصناعات الدفاعية الأول في العاصمة الأوكرانية بمشاركة عشرات الشركات.")
OTHER = ("أعلنت وزارة المالية السعودية عن ميزانية العام المقبل بإنفاق يتجاوز تريليون ريال مع توقعات بعجز محدود. "
         "وقال الوزير إن الإيرادات غير النفطية ارتفعت بنسبة كبيرة خلال العام الجاري بفضل الإصلاحات الاقتصادية. "
         "وأضاف أن الحكومة ستواصل الاستثمار في مشروعات البنية التحتية والإسكان والصحة والتعليم.")


def test_content_hash_ignores_folds_and_spacing_only():
    assert content_hash("قال الأمين العام\n\nللحلف") == content_hash("قال  الامين العام للحلف")
    assert content_hash("مدرسة") == content_hash("مدرسه")
    assert content_hash("قال الأمين") != content_hash("قال الرئيس")


def test_signature_is_deterministic_across_processes():
    code = ("from akhbar.transforms.dedup import MinHasher; import sys; "
            f"print(MinHasher().signature({WIRE!r})[0][:8])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout.strip() for seed in ("1", "2")}
    assert len(outs) == 1 and str(MinHasher().signature(WIRE)[0][:8]) in outs


def test_edited_copy_and_trimmed_copy_are_near_duplicates_unrelated_is_not():
    h = MinHasher()
    idx = NearDupIndex()
    s, n = h.signature(WIRE)
    idx.add("orig", s, n)
    edited = WIRE.replace("الخميس", "اليوم").replace("تدريجيا", "ملموسا") + " المصدر: أ ف ب"
    trimmed = ". ".join(WIRE.split(". ")[:3])
    assert idx.query(*h.signature(edited)) == "orig"
    assert idx.query(*h.signature(trimmed)) == "orig"
    assert idx.query(*h.signature(OTHER)) is None
    assert idx.query(*h.signature("")) is None


def test_assign_points_to_first_seen_copy_and_prior_wins():
    h = MinHasher()
    sig = {k: h.signature(t) for k, t in {"a": WIRE, "b": WIRE + " تحديث", "c": OTHER, "d": WIRE[:-20]}.items()}
    idx = NearDupIndex()
    idx.add("stored", *sig["a"])
    out = assign_near_duplicates(idx, [(2, "b", *sig["b"]), (1, "d", *sig["d"]), (3, "c", *sig["c"])])
    assert out == {"b": "stored", "d": "stored"}
    fresh = assign_near_duplicates(NearDupIndex(), [(2, "b", *sig["b"]), (1, "d", *sig["d"])])
    assert fresh == {"b": "d"}


def test_bands_must_divide_permutations():
    import pytest

    with pytest.raises(ValueError):
        NearDupConfig(num_perm=100, bands=32)


words = st.lists(st.sampled_from(WIRE.split()[:60]), min_size=8, max_size=80)


@settings(max_examples=60, deadline=None)
@given(words, words)
def test_jaccard_estimate_within_tolerance(a, b):
    cfg = NearDupConfig(num_perm=256, bands=64)
    h = MinHasher(cfg)
    ta, tb = " ".join(a), " ".join(b)
    sa, sb = shingles(ta, cfg.shingle), shingles(tb, cfg.shingle)
    true = len(sa & sb) / len(sa | sb)
    est = jaccard(h.signature(ta)[0], h.signature(tb)[0])
    assert abs(est - true) < 0.15


# --- verification with shingle hashes, boilerplate, time gap, persisted entries ----------------
from datetime import datetime, timedelta, timezone  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from akhbar.transforms.dedup import (  # noqa: E402
    DocFrequency,
    IndexEntry,
    NearItem,
    exact_containment,
    index_entries_from_arrow,
    index_entries_to_arrow,
    index_from_entries,
    remove_boilerplate,
    shingle_hashes,
)

T0 = datetime(2024, 6, 1, 12, tzinfo=timezone.utc)
# Teasers of other stories that one site appends to every article (invented text, same shape as
# the "read also" blocks seen on real Arabic news sites).
TEASERS = ("اقرأ أيضا: ارتفاع أسعار النفط في الأسواق العالمية بعد قرار أوبك بخفض الإنتاج للشهر الثالث على التوالي. "
           "اقرأ أيضا: منتخب مصر يتأهل إلى الدور النهائي من بطولة كأس الأمم الأفريقية بعد فوز صعب على نيجيريا. "
           "اقرأ أيضا: الأمم المتحدة تحذر من موجة جفاف جديدة تهدد ملايين السكان في منطقة القرن الأفريقي هذا العام.")


def item(aid, text, source="s", when=T0, order=None):
    h = MinHasher()
    sh = shingle_hashes(text)
    return NearItem(order if order is not None else when, aid, h.signature_of(sh), len(sh), sh, source, when)


def test_shingle_hashes_are_sorted_unique_and_feed_the_same_signature():
    sh = shingle_hashes(WIRE)
    assert sh.dtype == np.uint32 and np.all(np.diff(sh.astype(np.int64)) > 0)
    assert MinHasher().signature(WIRE) == (MinHasher().signature_of(sh), len(sh))
    assert len(shingle_hashes("")) == 0 and exact_containment(sh, shingle_hashes("")) == 0.0
    assert exact_containment(sh, sh) == 1.0


def test_verified_copy_matches_rewritten_half_does_not_match_unrelated():
    first_half = ". ".join(WIRE.split(". ")[:3])
    items = [item("orig", WIRE), item("trim", first_half + " المصدر: وكالات", when=T0 + timedelta(hours=2)),
             item("other", OTHER, when=T0 + timedelta(hours=3))]
    assert assign_near_duplicates(NearDupIndex(), items) == {"trim": "orig"}


def test_shared_teaser_block_alone_is_not_a_duplicate_once_counted_as_boilerplate():
    # two different short stories, same site, same appended teasers: the teasers are half the text
    a = OTHER + " " + TEASERS
    b = ("قررت الحكومة زيادة أسعار الوقود اعتبارا من الأحد استجابة لتوصيات صندوق النقد الدولي بخفض العجز. "
         "وقال بيان رسمي إن الزيادة هي الرابعة منذ بداية العام بسبب ارتفاع أسعار النفط. ") + TEASERS
    fillers = [item(f"f{i}", f"خبر رقم {i} عن موضوع مختلف تماما في يوم مختلف. " + TEASERS,
                    when=T0 - timedelta(days=i + 1)) for i in range(5)]
    pair = [item("a", a), item("b", b, when=T0 + timedelta(hours=1))]
    assert exact_containment(pair[0].shingles, pair[1].shingles) >= NearDupConfig().containment  # looks alike
    out = assign_near_duplicates(NearDupIndex(), fillers + pair)
    assert "b" not in out
    # without the other pages of that site the teasers are not known as boilerplate
    assert assign_near_duplicates(NearDupIndex(), pair) == {"b": "a"}


def test_entries_are_filtered_by_the_boilerplate_in_force_when_they_are_compared():
    """An entry's boilerplate-free shingles are worked out when it is first a candidate and again
    after every set_boilerplate: the same pair matches, then not once the shared teasers are
    boilerplate, then again once they are not; the stored entry itself never changes."""
    a, b = item("a", OTHER + " " + TEASERS), item("b", "قررت الحكومة زيادة أسعار الوقود. " + TEASERS)
    index = NearDupIndex()
    index.add(a.article_id, a.signature, a.size, shingles=a.shingles, source_id=a.source_id, when=a.when)
    stored = dataclasses.replace(index.entries[0])
    ask = dict(shingles=b.shingles, source_id=b.source_id, when=b.when)
    assert index.query(b.signature, b.size, **ask) == "a"
    index.set_boilerplate({"s": shingle_hashes(TEASERS)[::-1].copy()})  # in any order
    assert index.query(b.signature, b.size, **ask) is None
    index.set_boilerplate({})
    assert index.query(b.signature, b.size, **ask) == "a"
    assert index.entries == [stored] and index.entries[0].kept is not None  # ``kept`` is not compared


def test_boilerplate_is_per_source_and_needs_enough_other_documents():
    sh = shingle_hashes(TEASERS)
    df = DocFrequency()
    for _ in range(5):
        df.add("cnn", sh)
    df.add("bbc", sh)
    other = DocFrequency().add("cnn", sh)
    b = df.boilerplate(5)
    assert len(b["cnn"]) == 0 and len(b["bbc"]) == 0  # 5 documents = 4 others: not yet
    b = df.merge(other).boilerplate(5)
    assert np.array_equal(b["cnn"], sh) and len(b["bbc"]) == 0
    kept = remove_boilerplate(shingle_hashes(WIRE + " " + TEASERS), b["cnn"])
    assert np.isin(shingle_hashes(WIRE), kept).all() and not np.isin(sh, kept).any()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=40, unique=True), st.lists(st.integers(0, 60), max_size=40, unique=True))
def test_removing_boilerplate_is_a_set_difference(article, boiler):
    hashes = np.array(sorted(article), dtype=np.uint32)
    got = remove_boilerplate(hashes, np.array(sorted(boiler), dtype=np.uint32))
    assert got.tolist() == sorted(set(article) - set(boiler)) and got.dtype == np.uint32


def test_publication_gap_limit():
    later = item("later", WIRE, when=T0 + timedelta(days=45))
    assert assign_near_duplicates(NearDupIndex(), [item("orig", WIRE), later]) == {}
    cfg = NearDupConfig(max_gap_days=None)
    assert assign_near_duplicates(NearDupIndex(cfg), [item("orig", WIRE), later]) == {"later": "orig"}


def test_config_rejects_nonsense():
    import pytest

    with pytest.raises(ValueError):
        NearDupConfig(containment=0)
    with pytest.raises(ValueError):
        NearDupConfig(boiler_docs=0)


def test_index_entries_round_trip_through_arrow_and_age_out(tmp_path):
    import pyarrow.parquet as pq

    idx = NearDupIndex()
    assign_near_duplicates(idx, [item("orig", WIRE), item("copy", WIRE + " تحديث", when=T0 + timedelta(hours=1)),
                                 item("other", OTHER, source="t")])
    fetched = {"orig": T0 - timedelta(days=40), "copy": T0, "other": T0 + timedelta(minutes=5)}
    table = index_entries_to_arrow((e, fetched[e.article_id]) for e in idx.entries)
    pq.write_table(table, tmp_path / "n.parquet")
    back = index_entries_from_arrow(pq.read_table(tmp_path / "n.parquet"))
    assert [(e.article_id, e.root, e.source_id) for e, _ in back] == [
        ("orig", "orig", "s"), ("copy", "orig", "s"), ("other", "other", "t")]
    for (e, _), o in zip(back, sorted(idx.entries, key=lambda e: fetched[e.article_id])):
        assert e.signature == o.signature and e.size == o.size and np.array_equal(e.shingles, o.shingles)
    recent = index_entries_from_arrow(table, now=T0 + timedelta(days=1), window_days=30)
    assert [e.article_id for e, _ in recent] == ["copy", "other"]
    # a new run matches against the persisted entries exactly as against the live index
    again = index_from_entries(recent)
    assert assign_near_duplicates(again, [item("new", WIRE, when=T0 + timedelta(hours=5))]) == {"new": "orig"}


def test_signature_is_the_textbook_minhash():
    """min over shingles of ((a·x + b) mod (2^61 - 1)) & 0xFFFFFFFF, in exact integers: the
    division-free reduction gives the same values, at the extremes of x too."""
    h = MinHasher()
    p = (1 << 61) - 1
    hashes = np.array(sorted({0, 1, 2, 0xFFFFFFFF, 0xFFFFFFFE, 0x80000000, *range(1000, 300_000, 997)}),
                      dtype=np.uint32)
    expect = [min(((int(a) * int(x) + int(b)) % p) & 0xFFFFFFFF for x in hashes) for a, b in zip(h._a, h._b)]
    assert np.frombuffer(h.signature_of(hashes), dtype="<u4").tolist() == expect


def test_shingle_hash_is_blake2b_little_endian():
    import hashlib

    got = shingle_hashes("واحد اثنان ثلاثه", 3)
    want = int.from_bytes(hashlib.blake2b("واحد اثنان ثلاثه".encode(), digest_size=4).digest(), "little")
    assert got.dtype == np.uint32 and got.tolist() == [want]


def test_the_fingerprints_of_a_text_are_pinned():
    """Stored articles' index entries are cached under _state/neardup/ by FINGERPRINT_VERSION. If
    this fails, the shingles or signature of a text changed (normalization, tokenization, hashing):
    bump dedup.FINGERPRINT_VERSION so that cached entries are computed again, then update the pin."""
    import hashlib

    from akhbar.transforms.dedup import FINGERPRINT_VERSION

    text = ("أعلن الأمين العام لحلف شمال الأطلسي ينس ستولتنبرغ الخميس أن كييف أقرب من أي وقت مضى إلى عضوية الحلف. "
            "وقال خلال مؤتمرٍ صحفيّ مع الرئيس الأوكراني «فولوديمير زيلينسكي» إن أوكرانيا ستصبح عضواً في الحلف ٢٠٢٤.")
    hashes = shingle_hashes(text, 3)
    digest = hashlib.sha256(hashes.astype("<u4").tobytes() + MinHasher().signature_of(hashes)).hexdigest()
    pins = {1: (33, "f4bfb3f2283e359c483b7fde85cfeb7758f26bedcf0b96d2b2ceca2f7facfe8f")}
    assert (len(hashes), digest) == pins[FINGERPRINT_VERSION], "fingerprints changed: bump FINGERPRINT_VERSION"


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(8, 4), (8, 8), (16, 4), (128, 64)]), st.integers(0, 2**32 - 1),
       st.integers(1, 40), st.integers(0, 10))
def test_a_loaded_index_finds_what_one_built_entry_by_entry_finds(shape, seed, n, later):
    """``load`` (one sorted array of band keys, for a stored window) and ``add`` (buckets in a
    dict) give the same candidates in the same order, for bands of 1, 2 and 4 values, also when
    entries are added after the load; an empty signature stays out of the buckets."""
    num_perm, bands = shape
    cfg = NearDupConfig(num_perm=num_perm, bands=bands)
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 4, size=(n + later + 20, num_perm), dtype=np.uint32)  # few values: bands are shared
    pool[rng.random(pool.shape) < 0.5] = rng.integers(0, 2**32, dtype=np.uint32)  # and some of full width
    sigs = [row.astype("<u4").tobytes() for row in pool]
    sizes = [0 if i % 7 == 3 else 10 for i in range(len(sigs))]
    one_by_one, loaded = NearDupIndex(cfg), NearDupIndex(cfg)
    for i in range(n + later):
        one_by_one.add(str(i), sigs[i], sizes[i])
    loaded.load(IndexEntry(str(i), str(i), sigs[i], sizes[i]) for i in range(n))
    for i in range(n, n + later):
        loaded.add(str(i), sigs[i], sizes[i])
    assert loaded.entries == one_by_one.entries
    for q in sigs:
        assert loaded.candidates(q) == one_by_one.candidates(q)


def test_load_fills_only_an_empty_index():
    index = NearDupIndex()
    index.add("a", bytes(512), 3)
    with pytest.raises(ValueError, match="empty index"):
        index.load([])


def test_lsh_candidates_share_a_band_in_the_same_position_in_first_seen_order():
    """Candidates are the entries sharing at least one whole band with the query, each once, in
    the order they were added; equal bytes in different bands are no match."""
    cfg = NearDupConfig(num_perm=8, bands=4)  # bands of 2 rows, 8 bytes each
    idx = NearDupIndex(cfg)

    def sig(*rows):
        return np.array(rows, dtype="<u4").tobytes()

    idx.add("a", sig(1, 2, 3, 4, 5, 6, 7, 8), 10)
    idx.add("b", sig(1, 2, 9, 9, 9, 9, 9, 9), 10)  # band 0 as a
    idx.add("c", sig(0, 0, 1, 2, 0, 0, 0, 0), 10)  # a's band-0 bytes, but in band 1
    idx.add("d", sig(1, 2, 3, 4, 9, 9, 7, 8), 10)  # bands 0, 1 and 3 as a
    assert idx.candidates(sig(1, 2, 5, 5, 6, 6, 7, 7)) == [0, 1, 3]
    assert idx.candidates(sig(5, 5, 1, 2, 5, 5, 5, 5)) == [2]
    assert idx.candidates(sig(1, 2, 3, 4, 5, 6, 7, 8)) == [0, 1, 3]
    assert idx.candidates(sig(3, 3, 3, 3, 3, 3, 3, 3)) == []
    idx.add("e", sig(0, 0, 0, 0, 0, 0, 0, 0), 0)  # nothing to compare: kept out of the buckets
    assert idx.candidates(sig(0, 0, 0, 0, 0, 0, 0, 0)) == [2]
