"""Tests for the measuring and tuning helpers (small fixtures written here, no evaluation data)."""
from __future__ import annotations

import math

import pytest

from akhbar.transforms import evaluate as ev
from akhbar.transforms.classify import TOPICS, load_lexicon, match_lexicon


def test_prf_counts_and_scores():
    c = ev.prf([True, True, False, False, True], [True, False, True, False, True])
    assert (c.tp, c.fp, c.fn) == (2, 1, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(2 / 3)
    assert (c + c).tp == 4
    assert ev.prf([False], [False]).f1 == 0.0


def test_best_threshold_sits_between_examples():
    values = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]
    gold = [False, False, False, True, True, True]
    cut, counts = ev.best_threshold(values, gold)
    assert 1.0 < cut < 2.0
    assert counts.f1 == 1.0


def test_best_threshold_never_takes_zero_evidence():
    cut, counts = ev.best_threshold([0.0, 0.0, 1.0], [True, True, False])
    assert cut > 0
    assert counts.tp == 0
    cut, counts = ev.best_threshold([0.0, 0.0], [True, False])
    assert math.isinf(cut) and counts.fn == 1


def test_date_key_and_date_folds():
    ids = [f"SK-x-{i}-2018{m:02d}{d:02d}" for i, (m, d) in enumerate([(1, 1), (1, 1), (2, 3), (3, 4), (5, 6),
                                                                      (6, 7), (7, 8), (8, 9), (9, 9), (10, 1)])]
    assert ev.date_key(ids[0]) == "20180101" and ev.date_key("seed") == ""
    folds = ev.folds_by_date(ids, 5)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    # contiguous: fold numbers never decrease with the date, and one date stays in one fold
    ordered = [f for _, f in sorted(zip(ids, folds), key=lambda x: ev.date_key(x[0]))]
    assert ordered == sorted(ordered)
    assert folds[0] == folds[1]


def test_group_folds():
    groups = ["a", "b", "a", "c", "b", "d"]
    assert ev.folds_by_group(groups) == [0, 1, 0, 2, 1, 3]
    two = ev.folds_by_group(groups, 2)
    assert set(two) == {0, 1}
    assert two[0] == two[2] and two[1] == two[4]


def _fixture():
    """Twelve tiny articles in three outlets: clear stories, passing mentions and no-term ones."""
    nato = ("الناتو يعقد قمة في بروكسل", "اجتمع قادة حلف شمال الأطلسي في بروكسل.\nوقال ستولتنبرغ إن الحلف موحد.")
    ukr = ("أوكرانيا تطالب بالدعم", "قال زيلينسكي في كييف إن أوكرانيا تحتاج دعما.\nوتحدث عن القرم ودونباس.")
    passing = ("الأسواق تنتعش", "ارتفعت الأسهم.\nوارتفع النفط.\nوكان الوزير قد زار الناتو وأوكرانيا قبل عام.\nوتراجع الذهب.")
    none = ("الطقس حار", "درجات الحرارة مرتفعة في المنطقة.\nوتوقعت الأرصاد أمطارا.")
    docs, gold, groups = [], {t: [] for t in TOPICS}, []
    for g in ("x", "y", "z", "w"):
        for (title, body), labels in ((nato, (True, False)), (ukr, (False, True)), (passing, (False, False)),
                                      (none, (False, False))):
            docs.append((title, body))
            gold["nato"].append(labels[0])
            gold["ukraine"].append(labels[1])
            groups.append(g)
    return docs, gold, groups


def test_cross_validation_on_a_fixture():
    lex = load_lexicon()
    docs, gold, groups = _fixture()
    matches = [match_lexicon(t, b, lex) for t, b in docs]
    settings = ev.grid_settings(lex.scoring, {"title_weight": (2.0, 3.0), "support_boost": (1.0, 1.5)})
    assert len(settings) == 4
    table = ev.evidence_table(lex, matches, settings)
    folds = ev.folds_by_group(groups)
    res = ev.cross_validate_lexicon(table, settings, gold, folds, "outlet")
    assert len(res.folds) == 4 and len(res.chosen) == 4
    for t in TOPICS:
        assert res.pooled(t).f1 == 1.0
        assert res.f1_mean_sd(t) == (1.0, 0.0)
    # the no-term articles are never predicted, whatever was chosen
    for i, (title, _) in enumerate(docs):
        if title == "الطقس حار":
            assert not res.predictions["nato"][i] and not res.predictions["ukraine"][i]
    ci, cuts = ev.tune_lexicon(table, gold)
    fixed = ev.evaluate_fixed(table[ci], cuts, gold, folds, "outlet")
    assert fixed.pooled("nato").f1 == 1.0
    assert 0 < ev.evidence_to_score_threshold(cuts["nato"], lex.scoring["k"]) < 1


def test_a_labels_file_is_read_by_its_header_and_an_ids_file_is_not_one(tmp_path):
    labels = tmp_path / "heldout.tsv"
    labels.write_text("\ufeffdocno\tnato\tukraine\tkind\nA-1\t1\t0\tterm\nA-2\t0\t0\tno-term\n", encoding="utf-8")
    assert ev.read_labels(labels) == {"A-1": {"docno": "A-1", "nato": "1", "ukraine": "0", "kind": "term"},
                                   "A-2": {"docno": "A-2", "nato": "0", "ukraine": "0", "kind": "no-term"}}
    ids = tmp_path / "ids.txt"
    ids.write_text("A-1\nA-2\n", encoding="utf-8")
    assert ev.read_labels(ids) is None
    (tmp_path / "half.tsv").write_text("docno\tnato\nA-1\t1\n", encoding="utf-8")
    assert ev.read_labels(tmp_path / "half.tsv") is None
