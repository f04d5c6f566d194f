from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.transforms.arabic import FOLD_TABLE, normalize, tokens


def test_folds():
    assert normalize("أإآٱ") == "اااا"
    assert normalize("مستشفى") == normalize("مستشفي")
    assert normalize("مدرسة") == normalize("مدرسه")
    assert normalize("الْعَرَبِيَّةُ") == "العربيه"
    assert normalize("الحــــلف") == "الحلف"  # tatweel
    assert normalize("٢٠٢٥ ۱۴") == "2025 14"
    assert normalize("أ\u200fوكرانيا\u200b") == "اوكرانيا"  # bidi and zero-width controls
    assert normalize("ﻻ") == "لا"  # presentation-form ligature
    assert normalize("قال، ثم؛ لماذا؟") == "قال, ثم; لماذا?"


def test_tokens():
    assert tokens("«الناتو» (NATO) 31-دولة") == ["الناتو", "nato", "31", "دوله"]


def test_fold_table_is_documented():
    import pathlib

    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "normalization.md"
    text = doc.read_text(encoding="utf-8")
    for what, src, dst in FOLD_TABLE:
        assert what in text, f"docs/normalization.md does not document: {what}"


arabicish = st.text(alphabet=st.characters(min_codepoint=0x0600, max_codepoint=0x06FF) | st.sampled_from(
    list(" \u200b\u200f\u0640ﻻﺍﺑabcABC0123456789،؛؟.!\n\t")), max_size=60)


@settings(max_examples=500, deadline=None)
@given(arabicish)
def test_normalize_is_idempotent_on_arabic(s):
    assert normalize(normalize(s)) == normalize(s)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_normalize_is_idempotent_on_any_text(s):
    assert normalize(normalize(s)) == normalize(s)
