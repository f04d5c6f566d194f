import pytest

from akhbar.transforms.credits import credit_line, split_credits, split_dateline

PARA = "قال الأمين العام لحلف شمال الأطلسي إن الحلف سيواصل دعم أوكرانيا طالما استغرق الأمر ذلك."


@pytest.mark.parametrize("line, expected", [
    ("فرانس24/ أ ف ب", ["فرانس24", "أ ف ب"]),
    ("(أ ف ب)", ["أ ف ب"]),
    ("أ.ف.ب", ["أ.ف.ب"]),
    ("رويترز", ["رويترز"]),
    ("رويترز - أ ف ب", ["رويترز", "أ ف ب"]),
    ("المصدر: موزاييك أف.أم", ["موزاييك أف.أم"]),
    ("المصدر : وكالات.", ["وكالات"]),
    ("(CNN)", ["CNN"]),
    ("وكالة الأناضول", ["وكالة الأناضول"]),
])
def test_credit_lines(line, expected):
    assert credit_line(line) == expected


@pytest.mark.parametrize("line", [
    PARA,
    "قالت رويترز إن الحرب ستنتهي قريبا",
    "المصدر الرئيسي للقلق هو التضخم في البلاد",
    "رويترز تنشر تقريرا جديدا عن الحرب في أوكرانيا",
    "",
])
def test_sentences_are_not_credit_lines(line):
    assert credit_line(line) is None


@pytest.mark.parametrize("paragraph, dateline, rest, credits", [
    ("دبي، الإمارات العربية المتحدة (CNN) -- أكدت جهات سورية معارضة أن فصائل مسلحة",
     "دبي، الإمارات العربية المتحدة (CNN) --", "أكدت جهات سورية معارضة أن فصائل مسلحة", ["CNN"]),
    ("(CNN)-- أكدت جهات سورية معارضة أن فصائل مسلحة", "(CNN)--", "أكدت جهات سورية معارضة أن فصائل مسلحة", ["CNN"]),
    ("واشنطن (رويترز) - قال مسؤولون أمريكيون اليوم إن", "واشنطن (رويترز) -", "قال مسؤولون أمريكيون اليوم إن",
     ["رويترز"]),
    ("بوابة اوكرانيا – كييف – 29 تشرين الثاني 2022 – قال الأمين العام لحلف شمال الأطلسي",
     "بوابة اوكرانيا – كييف – 29 تشرين الثاني 2022", "قال الأمين العام لحلف شمال الأطلسي", []),
])
def test_datelines(paragraph, dateline, rest, credits):
    assert split_dateline(paragraph) == (dateline, rest, credits)


@pytest.mark.parametrize("paragraph", [
    "قال الوزير - في تصريح صحفي - إن الحكومة ستعمل على خفض الأسعار",
    "موسكو - أعلنت وزارة الدفاع الروسية اليوم أن قواتها",  # a lone city is left alone (cannot tell from prose)
    "الحرب (أ ف ب) -- كلمتان",  # too little text after it
    "ترامب - بايدن - هاريس: من يفوز في الانتخابات المقبلة؟ قال مسؤولون إن النتائج ستعلن غدا",  # a kicker
    "كييف - موسكو - البيت الأبيض: تصعيد جديد في الحرب بعد هجوم على محطة الكهرباء",  # a kicker
    PARA,
])
def test_real_sentences_keep_their_start(paragraph):
    assert split_dateline(paragraph) == (None, paragraph, [])


def test_site_name_dateline_needs_the_site_name():
    p = "أخبار هنا العالم - روته يتوقع انضمام دول جديدة لمبادرة الناتو"
    assert split_dateline(p)[0] is None
    assert split_dateline(p, ("اخبار هنا العالم",))[:2] == ("أخبار هنا العالم", "روته يتوقع انضمام دول جديدة لمبادرة الناتو")


def test_split_credits_moves_lines_trailing_brackets_and_the_dateline():
    body = "\n".join(["دمشق، سوريا (CNN) -- " + PARA, PARA, "فرانس24/ أ ف ب", "المصدر: موزاييك أف.أم",
                      "وأضاف أن الحلف سيواصل العمل مع شركائه. (رويترز)"])
    text, credits, dateline = split_credits(body)
    assert dateline == "دمشق، سوريا (CNN) --"
    assert credits == ("CNN", "فرانس24", "أ ف ب", "موزاييك أف.أم", "رويترز")
    assert text.split("\n") == [PARA, PARA, "وأضاف أن الحلف سيواصل العمل مع شركائه."]


def test_split_credits_leaves_plain_text_unchanged():
    body = f"{PARA}\n{PARA}"
    assert split_credits(body) == (body, (), None)


@pytest.mark.parametrize("line, expected", [
    ("(أ ش أ)", ["أ ش أ"]), ("واج", ["واج"]), ("(ومع)", ["ومع"]), ("(وات)", ["وات"]), ("سبأ", ["سبأ"]),
    ("--(بترا)", ["بترا"]), ("العمانية", ["العمانية"]),
])
def test_more_agencies_and_a_dash_led_credit(line, expected):
    assert credit_line(line) == expected


def test_dashed_agency_dateline_and_clauses_that_look_like_one():
    assert split_dateline("دمشق-سانا- قال وزير الخارجية إن سوريا تدعم جهود التهدئة") == (
        "دمشق-سانا-", "قال وزير الخارجية إن سوريا تدعم جهود التهدئة", ["سانا"])
    assert split_dateline("القاهرة (أ ش أ) - قال وزير الخارجية إن مصر تدعم التهدئة")[0] == "القاهرة (أ ش أ) -"
    clause = "أكد وزير الخارجية (رويترز) - في تصريح - أن الوضع خطير جدا في المنطقة كلها."
    assert split_dateline(clause) == (None, clause, [])


@pytest.mark.parametrize("last", ["وأسفر الهجوم عن مقتل خمسة أشخاص، بحسب ما نقلت وكالة (رويترز).",
                                  "وأسفر الهجوم عن مقتل خمسة أشخاص وفق ما أوردته قناة (الجزيرة)"])
def test_a_bracketed_agency_the_sentence_names_stays_in_it(last):
    body, credits, _ = split_credits(PARA + "\n" + last)
    assert body.split("\n")[-1] == last and credits == ()
