import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.transforms.language import LANGUAGES, detect_language, normalize_lang_tag

ARABIC = (
    "أعلن حلف شمال الأطلسي، اليوم الثلاثاء، عن حزمة مساعدات عسكرية جديدة لأوكرانيا، "
    "وقال الأمين العام للحلف في مؤتمر صحفي إن الدول الأعضاء ملتزمة بدعم كييف حتى نهاية الحرب."
)
ARABIC_WITH_PERSIAN_NAME = (
    "قال الرئيس الإيراني مسعود پزشکیان، اليوم الثلاثاء، إن بلاده لا تسعى إلى الحرب، "
    "مؤكداً أن المفاوضات النووية يجب أن تستند إلى الاحترام المتبادل."
)
# Arabic as typed on a Persian keyboard by Iranian outlets (ی and ک throughout).
ARABIC_PERSIAN_KEYBOARD = (
    "أکد الرئیس الإیرانی مسعود پزشکیان فی کلمة له الیوم أن الجمهوریة الإسلامیة لن تتخلى "
    "عن حقوقها النوویة، مشیرا إلى أن الحوار هو السبیل الوحید."
)
ARABIC_WITH_URDU_NAME = (
    "التقى وزير الخارجية السعودي رئيس الوزراء الباكستاني شہباز شریف في إسلام آباد "
    "لبحث العلاقات الثنائية والتعاون الاقتصادي بين البلدين."
)
PERSIAN = (
    "رئیس‌جمهور ایران روز سه‌شنبه در سفر به نیویورک گفت که کشورش به دنبال جنگ نیست. "
    "وی همچنین افزود که مذاکرات هسته‌ای باید بر پایه احترام متقابل ادامه پیدا کند و "
    "تحریم‌ها برداشته شود."
)
# Persian typed without zero-width non-joiners, with spaces instead.
PERSIAN_NO_ZWNJ = (
    "قیمت دلار در بازار آزاد تهران امروز افزایش یافت. کارشناسان اقتصادی می گویند این "
    "افزایش به دلیل نگرانی از تحریم های جدید است و بانک مرکزی هنوز واکنشی نشان نداده است."
)
URDU = (
    "وزیر اعظم نے منگل کے روز اسلام آباد میں ایک اہم اجلاس کی صدارت کی۔ اجلاس میں ملک کی "
    "معاشی صورتحال اور مہنگائی پر تفصیلی غور کیا گیا اور کئی اہم فیصلے کیے گئے۔"
)
ENGLISH = (
    "NATO leaders met in Brussels on Tuesday to discuss further military support for "
    "Ukraine, the alliance said in a statement."
)
FRENCH = (
    "Les dirigeants de l'OTAN se sont réunis mardi à Bruxelles pour discuter d'un soutien "
    "militaire supplémentaire à l'Ukraine, selon un communiqué."
)
GERMAN = (
    "Die Staats- und Regierungschefs der NATO trafen sich am Dienstag in Brüssel, um über "
    "weitere Militärhilfe für die Ukraine zu beraten."
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (ARABIC, "ar"),
        (ARABIC_WITH_PERSIAN_NAME, "ar"),
        (ARABIC_PERSIAN_KEYBOARD, "ar"),
        (ARABIC_WITH_URDU_NAME, "ar"),
        ("پزشکیان يزور بغداد", "ar"),
        (PERSIAN, "fa"),
        (PERSIAN_NO_ZWNJ, "fa"),
        (URDU, "ur"),
        (ENGLISH, "en"),
        (FRENCH, "fr"),
        (GERMAN, "und"),
        ("", "und"),
        ("   \n", "und"),
        ("2025 - 10:30 !!", "und"),
        ("OK", "und"),
    ],
)
def test_detect(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize("declared", [None, "ar", "fa-IR", "en", "ur-PK"])
def test_declared_does_not_override_clear_text(declared):
    assert detect_language(ARABIC, declared) == "ar"
    assert detect_language(PERSIAN, declared) == "fa"
    assert detect_language(URDU, declared) == "ur"
    assert detect_language(ENGLISH, declared) == "en"


def test_declared_breaks_ties_on_short_text():
    assert detect_language("عاجل", "fa-IR") == "fa"
    assert detect_language("عاجل", "ur") == "ur"
    assert detect_language("عاجل", "ar-EG") == "ar"
    assert detect_language("عاجل") == "ar"
    # a declared language of the other script is ignored
    assert detect_language("عاجل", "en") == "ar"
    assert detect_language("Breaking", "fr-FR") == "fr"
    assert detect_language("Breaking", "en") == "en"
    assert detect_language("Breaking", "ar") == "und"
    assert detect_language("Breaking") == "und"
    # no letters at all: nothing to break a tie on
    assert detect_language("١٢٣", "ar") == "und"


def test_mixed_scripts_majority():
    text = ARABIC + " (NATO, Reuters)"
    assert detect_language(text) == "ar"
    text = ENGLISH + " — «الناتو»"
    assert detect_language(text) == "en"


def test_presentation_forms_and_diacritics():
    # Arabic presentation forms and harakat do not hide the language.
    shaped = "ﺍﻟﺮﺋﻴﺲ ﻗﺎﻝ ﻓﻲ ﺍﻟﻤﺆﺗﻤﺮ ﺍﻟﺼﺤﻔﻲ ﺇﻥ ﺍﻟﺤﻜﻮﻣﺔ ﻣﺴﺘﻤﺮﺓ"
    assert detect_language(shaped) == "ar"
    voweled = "قَالَ الرَّئِيسُ فِي المُؤْتَمَرِ الصَّحَفِيِّ إِنَّ الحُكُومَةَ مُسْتَمِرَّةٌ فِي عَمَلِهَا"
    assert detect_language(voweled) == "ar"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=10)))
def test_never_raises(text, declared):
    assert detect_language(text, declared) in LANGUAGES


@pytest.mark.parametrize(
    "tag, expected",
    [
        ("ar-EG", "ar"), ("ar", "ar"), ("AR_sa", "ar"), (" fa-IR ", "fa"), ("en-US", "en"),
        ("fr", "fr"), ("ara", "ar"), ("per", "fa"), ("urd", "ur"), ("de-DE", "de"),
        ("", None), (None, None), ("  ", None), ("x-default", None), ("123", None), ("*", None),
    ],
)
def test_normalize_lang_tag(tag, expected):
    assert normalize_lang_tag(tag) == expected


def test_the_word_mark_cache_changes_no_decision(monkeypatch):
    """Words' marks are cached (packed in one int per word, summed over a text); a cache emptied
    at every text, or a text repeated, decides as the marks computed word by word do."""
    from akhbar.transforms import language

    texts = [ARABIC, ARABIC_WITH_PERSIAN_NAME, ARABIC_PERSIAN_KEYBOARD, ARABIC_WITH_URDU_NAME, PERSIAN,
             PERSIAN_NO_ZWNJ, URDU, (PERSIAN + " ") * 3 + ARABIC]

    def by_words(text):
        tokens = language._AR_TOKEN_RE.findall(language._strip(text))
        marks = [language._word_marks(t) for t in tokens]
        return tuple(sum(m[i] for m in marks) for i in range(3))

    for text in texts:
        tokens = language._AR_TOKEN_RE.findall(language._strip(text))
        total = sum(language._mark_code(t) for t in tokens)
        assert (total & language._MASK, total >> language._FIELD & language._MASK,
                total >> 2 * language._FIELD) == by_words(text)
    expected = [detect_language(t) for t in texts]
    monkeypatch.setattr(language, "_MARK_CACHE_SIZE", 3)  # emptied at almost every text
    assert [detect_language(t) for t in texts + texts] == expected + expected
    assert expected == ["ar", "ar", "ar", "ar", "fa", "fa", "ur", "fa"]
