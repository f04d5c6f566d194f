"""Extraction quality gate on golden pages (tests/fixtures/pages/).

Each page has a hand-written reference (body, dateline, credits, publication day, language);
``floors.json`` pins the body token F1 measured when the floors were last set. A change that
lowers any page below its floor, or the mean below the pinned mean, fails and says by how much.
Rebuild pages with ``python tests/fixtures/pages/regenerate.py --eval-dir PATH/TO/shared/eval``; re-pin
(only on purpose) with ``--pin``.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import pytest

from akhbar.transforms.arabic import tokens
from akhbar.transforms.extract import extract
from akhbar.transforms.http import decode_document

HERE = Path(__file__).parent / "fixtures" / "pages"
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
TOLERANCE = 0.002  # floating noise only


def fixtures() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json") if p.stem != "floors")


def floors() -> dict:
    return json.loads((HERE / "floors.json").read_text(encoding="utf-8"))


@cache
def score(name: str) -> dict:
    spec = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    html, _ = decode_document((HERE / f"{name}.html").read_bytes(), spec["content_type"])
    ex = extract(html, spec["url"], now=NOW, min_words=5)
    ref, got = Counter(tokens(spec["reference"]["body"])), Counter(tokens(ex.body))
    overlap = sum((ref & got).values())
    p, r = overlap / max(1, sum(got.values())), overlap / max(1, sum(ref.values()))
    return {"spec": spec["reference"], "ex": ex, "p": p, "r": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def test_every_fixture_has_a_floor():
    assert sorted(floors()["f1"]) == fixtures()


@pytest.mark.parametrize("name", fixtures())
def test_body_f1_not_below_its_floor(name):
    s, floor = score(name), floors()["f1"][name]
    assert s["f1"] >= floor - TOLERANCE, (
        f"{name}: body F1 {s['f1']:.4f} is {floor - s['f1']:.4f} below its floor {floor:.4f} "
        f"(P {s['p']:.4f}, R {s['r']:.4f})")


def test_mean_f1_not_below_its_floor():
    mean = sum(score(n)["f1"] for n in fixtures()) / len(fixtures())
    floor = floors()["mean_f1"]
    assert mean >= floor - TOLERANCE, f"mean body F1 {mean:.4f} is {floor - mean:.4f} below its floor {floor:.4f}"


@pytest.mark.parametrize("name", fixtures())
def test_fields_match_the_reference(name):
    s = score(name)
    ref, ex = s["spec"], s["ex"]
    assert ex.dateline == ref["dateline"]
    assert list(ex.credit) == ref["credit"]
    assert ex.language == ref["language"]
    if ref["title"]:
        assert ex.title == ref["title"]
    day = ex.published_local.date().isoformat() if ex.published_local else None
    assert day == ref["published"]
    if "published_source" in ref:
        assert ex.published_source == ref["published_source"]
    for junk in ("إقرأ أيضاً", "مقالات مشابهة", "مشاركة عبر", "الرجاء الانتظار", "Main Logo", "Article Image",
                 "جميع الحقوق محفوظة"):
        assert junk not in ex.body
