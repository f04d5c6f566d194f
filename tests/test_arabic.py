from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.transforms.arabic import _TRANSLATE, FOLD_TABLE, CharMap, normalize, tokens


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


# CharMap: the array-based str.translate must give what str.translate gives, at every length
# (both sides of its switch-over), with characters outside the BMP and lone surrogates.
_FOLDABLE = "".join(chr(c) for c in _TRANSLATE) + "ابتثجحخ سلام ٠١٢ abc\n\t"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(_FOLDABLE + "\U0001F600\U00020000\ud800"), max_size=700))
def test_charmap_is_str_translate(s):
    fold = CharMap(_TRANSLATE)
    for text in (s, s * 40):  # the repeat takes most examples past the array path's threshold
        assert fold(text) == text.translate(_TRANSLATE)


def test_charmap_refuses_tables_it_cannot_do():
    import pytest

    with pytest.raises(ValueError, match="single BMP"):
        CharMap({ord("a"): "bc"})
    with pytest.raises(ValueError, match="single BMP"):
        CharMap({0x1F600: None})
