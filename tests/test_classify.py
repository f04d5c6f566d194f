"""Tests for the NATO / Ukraine lexicon classifier (self-contained: no evaluation data)."""
from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.transforms.classify import TopicResult, classify, load_lexicon


@pytest.fixture(scope="module")
def lex():
    return load_lexicon()


def nato_terms(lex, text, title=""):
    return classify(title, text, lex).evidence["nato"]


def ukraine_terms(lex, text, title=""):
    return classify(title, text, lex).evidence["ukraine"]


# ------------------------------------------------------------------ look-alikes


def test_senator_is_not_nato(lex):
    r = classify("سيناتور جمهوري ينتقد الميزانية", "قال السيناتور إن مجلس الشيوخ سيصوت غدا.", lex)
    assert r.evidence["nato"] == []
    assert r.nato_score == 0.0
    assert "nato" not in r.topics


def test_chievo_is_not_kyiv(lex):
    r = classify("كييفو يخسر أمام يوفنتوس", "سجل يوفنتوس هدفين في مرمى كييفو في الدوري الإيطالي.", lex)
    assert r.evidence["ukraine"] == []
    assert r.ukraine_score == 0.0


def test_atlantic_alone_is_not_nato(lex):
    r = classify(
        "إعصار قوي يضرب سواحل الأطلسي",
        "تشكل الإعصار في المحيط الأطلسي وتوجه نحو الساحل.\nوقالت الأرصاد إن مياه الأطلسي دافئة.",
        lex,
    )
    assert r.evidence["nato"] == []
    assert r.nato_score == 0.0


def test_atlantic_inside_the_alliance_name_counts(lex):
    assert nato_terms(lex, "اجتمع وزراء دفاع حلف شمال الأطلسي في بروكسل.") == ["حلف شمال الأطلسي"]
    assert nato_terms(lex, "وعقد الحلف الأطلسي اجتماعا طارئا.") == ["الحلف الأطلسي"]


def test_arab_nato_is_not_nato(lex):
    r = classify(
        "واشنطن تسعى إلى ناتو عربي",
        "تعمل الإدارة الأمريكية على تأسيس الناتو العربي لمواجهة إيران.\n"
        "ويضم تحالف ناتو عربي دول الخليج ومصر والأردن.",
        lex,
    )
    assert r.evidence["nato"] == []
    assert "nato" not in r.topics


def test_dynamo_kyiv_and_shakhtar_are_not_ukraine(lex):
    r = classify(
        "دينامو كييف يفوز على شاختار دونيتسك",
        "فاز فريق دينامو كييف على شاختار دونيتسك بهدفين في قمة الدوري.",
        lex,
    )
    assert r.evidence["ukraine"] == []


def test_football_final_in_kyiv_is_dampened(lex):
    body = "\n".join(
        [
            "يلتقي ريال مدريد مع ليفربول في نهائي دوري أبطال أوروبا لكرة القدم في كييف.",
            "ويأمل مدرب ليفربول أن يقود لاعبيه إلى الفوز في المباراة.",
            "ويبحث المنتخب الإسباني عن لاعب جديد قبل كأس العالم.",
            "وسجل المهاجم هدفا في الشوط الأول من المباراة الأخيرة.",
        ]
    )
    r = classify("ليفربول يستعد لنهائي كييف", body, lex)
    assert "ukraine" not in r.topics


# ------------------------------------------------------------------ clitics and inflection


@pytest.mark.parametrize(
    "sentence, term",
    [
        ("أعلن الأمين العام للناتو عن خطة جديدة.", "الناتو"),
        ("التقى الوزير بالناتو وبحلف شمال الأطلسي.", "الناتو"),
        ("ودعا والناتو إلى الحوار.", "الناتو"),
        ("قال ستولتنبرج إن الحلف موحد.", "ستولتنبرج"),
        ("قمة الناتو المقبلة في لاهاي.", "الناتو"),
        ("وقد أصدر حلف شمالي الأطلسي دعوة انضمام لمقدونيا.", "حلف شمالي الأطلسي"),
    ],
)
def test_nato_clitic_forms(lex, sentence, term):
    assert term in nato_terms(lex, sentence)


@pytest.mark.parametrize(
    "sentence, term",
    [
        ("وصل الوفد بكييف صباح اليوم.", "كييف"),
        ("قدمت ألمانيا مساعدات لكييف.", "كييف"),
        ("تضامن الحضور مع والأوكرانيين في محنتهم.", "أوكراني"),
        ("التقى الرئيس الأوكراني نظيره الفرنسي.", "أوكراني"),
        ("قالت الحكومة الأوكرانية إن الوضع مستقر.", "أوكراني"),
        ("وقال الأوكرانيون إنهم سيقاومون.", "أوكراني"),
        ("وفي أوكرانيا تستمر المعارك.", "أوكرانيا"),
        ("وصلت المساعدات إلى اوكرانيا.", "أوكرانيا"),
        ("عبرت السفن مضيق كيرتش.", "مضيق كيرتش"),
        ("تقدمت القوات في شبه جزيرة القرم.", "شبه جزيرة القرم"),
        ("استقبل زيلنسكي الوفد.", "زيلنسكي"),
    ],
)
def test_ukraine_clitic_forms(lex, sentence, term):
    assert term in ukraine_terms(lex, sentence)


def test_diacritics_and_tatweel_do_not_matter(lex):
    assert nato_terms(lex, "اجتمع قادة النـــاتو في بروكسل.") == ["الناتو"]
    assert ukraine_terms(lex, "زار الوزير أُوكْرَانِيَا.") == ["أوكرانيا"]


def test_multiword_longest_match_wins(lex):
    assert nato_terms(lex, "وقال الأمين العام لحلف شمال الأطلسي إن الحلف مستعد.") == ["حلف شمال الأطلسي"]


def test_council_counts_for_both_topics(lex):
    r = classify("", "اجتمع مجلس الناتو-أوكرانيا في بروكسل.", lex)
    assert "مجلس الناتو أوكرانيا" in r.evidence["nato"]
    assert "مجلس الناتو أوكرانيا" in r.evidence["ukraine"]


# ------------------------------------------------------------------ scoring


def _long_unrelated_story(extra: str = "") -> str:
    paras = [
        f"الفقرة رقم {i}: ناقش المجلس البلدي ميزانية الطرق والمدارس والمستشفيات في المدينة."
        for i in range(20)
    ]
    paras[14] = "وفي سياق آخر، كان الوزير قد زار مقر الناتو قبل عامين. " + extra
    return "\n".join(paras)


def test_passing_mention_in_long_story_is_below_threshold(lex):
    r = classify("المجلس البلدي يقر ميزانية الطرق", _long_unrelated_story(), lex)
    assert r.evidence["nato"] == ["الناتو"]
    assert 0 < r.nato_score < lex.thresholds["nato"]
    assert r.topics == []


def test_story_about_nato_and_ukraine_is_both(lex):
    r = classify(
        "الناتو يعد أوكرانيا بمزيد من الدعم العسكري",
        "\n".join(
            [
                "قال الأمين العام لحلف شمال الأطلسي إن الحلفاء سيواصلون دعم أوكرانيا.",
                "وأضاف ستولتنبرغ في مؤتمر صحفي مع زيلينسكي في كييف أن أوكرانيا أقرب إلى الناتو.",
                "وطلب الرئيس الأوكراني مزيدا من أنظمة الدفاع الجوي.",
            ]
        ),
        lex,
    )
    assert r.topics == ["nato", "ukraine"]
    assert r.nato_score > 0.8 and r.ukraine_score > 0.8
    # strongest first, deduplicated
    assert r.evidence["nato"][0] in {"الناتو", "حلف شمال الأطلسي"}
    assert len(r.evidence["nato"]) == len(set(r.evidence["nato"]))
    assert set(r.evidence["ukraine"]) >= {"أوكرانيا", "كييف", "زيلينسكي", "أوكراني"}
    assert r.evidence["ukraine"][0] == "أوكرانيا"


def test_title_mention_outweighs_body_mention(lex):
    body = "\n".join(["نص عام عن الاقتصاد والتجارة والأسواق."] * 10)
    in_title = classify("الناتو يجتمع", body, lex).nato_score
    in_body = classify("اجتماع", body + "\nوذكر أن الناتو يجتمع.", lex).nato_score
    assert in_title > in_body > 0


def test_thresholds_override(lex):
    text = "قال الأمين العام إن الناتو سيجتمع."
    r = classify("", text, lex, thresholds={"nato": 0.01})
    assert "nato" in r.topics
    r = classify("", text, lex, thresholds={"nato": 0.999})
    assert "nato" not in r.topics
    with pytest.raises(ValueError, match="unknown topic"):
        classify("", text, lex, thresholds={"sport": 0.5})


def test_empty_input(lex):
    r = classify("", "", lex)
    assert r == TopicResult(topics=[], nato_score=0.0, ukraine_score=0.0, evidence={"nato": [], "ukraine": []})


def test_lexicon_pickles(lex):
    again = pickle.loads(pickle.dumps(lex))
    text = "زار زيلينسكي مقر الناتو."
    assert classify("", text, again) == classify("", text, lex)


_ALPHABET = st.sampled_from(
    list("ابتثجحخدذرسشصضطظعغفقكلمنهويءآأإؤئىة ًٌٍَُِّْـ\n .،0123456789")
    + ["الناتو", "كييف", "كييفو", "أوكرانيا", "سيناتور", "الأطلسي", "حلف شمال", " عربي", "دينامو ", "للناتو", "الأوكرانيين"]
)


@settings(max_examples=300, deadline=None)
@given(
    title=st.lists(_ALPHABET, max_size=30).map("".join),
    body=st.one_of(st.text(max_size=400), st.lists(_ALPHABET, max_size=200).map("".join)),
)
def test_scores_are_bounded(title, body):
    lex = load_lexicon()
    r = classify(title, body, lex)
    for score in (r.nato_score, r.ukraine_score):
        assert 0.0 <= score <= 1.0
    assert set(r.topics) <= {"nato", "ukraine"}
    assert r.topics == [t for t in ("nato", "ukraine") if t in r.topics]
    for topic in ("nato", "ukraine"):
        assert len(r.evidence[topic]) == len(set(r.evidence[topic]))
        if not r.evidence[topic]:
            assert getattr(r, f"{topic}_score") == 0.0


# ------------------------------------------------------------------ lexicon loading


GOOD = """
topics:
  nato:
    entries:
      - {term: الناتو, kind: org, weight: 1.0}
  ukraine:
    entries:
      - {term: كييف, kind: place, weight: 1.0}
"""


def test_default_lexicon_loads(lex):
    assert lex.thresholds.keys() == {"nato", "ukraine"}
    assert lex.source.endswith("lexicon.yaml")


def test_custom_lexicon(tmp_path):
    p = tmp_path / "lex.yaml"
    p.write_text(GOOD, encoding="utf-8")
    lx = load_lexicon(str(p))
    assert lx.thresholds == {"nato": 0.5, "ukraine": 0.5}
    assert classify("الناتو وكييف", "", lx).topics == ["nato", "ukraine"]


@pytest.mark.parametrize(
    "replace, expected",
    [
        ("weight: 1.0}\n  ukraine", r"topics\.nato\.entries\[0\] \(term 'الناتو'\).*weight"),
        ("kind: org", r"topics\.nato\.entries\[0\] \(term 'الناتو'\).*kind"),
        ("term: الناتو", r"topics\.nato\.entries\[0\].*'term' must be a non-empty string"),
    ],
)
def test_bad_entry_is_named(tmp_path, replace, expected):
    bad = {
        "weight: 1.0}\n  ukraine": "weight: heavy}\n  ukraine",
        "kind: org": "kind: organisation",
        "term: الناتو": "term: ''",
    }[replace]
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD.replace(replace, bad), encoding="utf-8")
    with pytest.raises(ValueError, match=expected) as info:
        load_lexicon(str(p))
    assert str(p) in str(info.value)


def test_unknown_field_and_duplicate_are_named(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text(GOOD.replace("weight: 1.0}\n  ukraine", "wieght: 1.0}\n  ukraine"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad|typo") as info:
        load_lexicon(str(p))
    assert "الناتو" in str(info.value) and "wieght" in str(info.value)

    p = tmp_path / "dup.yaml"
    p.write_text(
        GOOD.replace(
            "      - {term: كييف, kind: place, weight: 1.0}",
            "      - {term: كييف, kind: place, weight: 1.0}\n      - {term: كِييف, kind: place, weight: 0.5}",
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"entries\[1\] \(term 'كِييف'\).*duplicates"):
        load_lexicon(str(p))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("topics: [", "not valid YAML"),
        ("- a list", "mapping at the top level"),
        (GOOD.replace("ukraine:", "sport:"), "unknown topic"),
        (GOOD + "scoring: {k: -1}\n", r"scoring\.k"),
        (GOOD + "    negative:\n      - {pattern: '{term} {term}'}\n", r"negative\[0\].*at most one"),
        (GOOD.replace("  ukraine:\n", "  ukraine:\n    threshold: 2\n"), r"ukraine\.threshold"),
    ],
)
def test_bad_file_structure(tmp_path, text, expected):
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=expected) as info:
        load_lexicon(str(p))
    assert str(p) in str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        # a kind that is a list or a mapping cannot be looked up among the kinds
        (GOOD.replace("kind: org", "kind: [org]"), r"entries\[0\] \(term 'الناتو'\): 'kind' must be one of .*\['org'\]"),
        (GOOD.replace("kind: org", "kind: {a: b}"), r"entries\[0\] \(term 'الناتو'\): 'kind' must be one of"),
        # unknown keys of mixed types (a number or ~ next to a word) are listed, not compared
        (GOOD + "1: x\nfoo: y\n", r"unknown top-level key\(s\) \[1, 'foo'\]"),
        (GOOD + "~: x\nfoo: y\n", r"unknown top-level key\(s\) \[None, 'foo'\]"),
        (GOOD.replace("  ukraine:\n", "  ukraine:\n    7: x\n    extra: y\n"), r"topics\.ukraine: unknown key\(s\) \[7, 'extra'\]"),
        (GOOD.replace("  ukraine:\n", "  2: x\n  sport: y\n  ukraine:\n"), r"unknown topic\(s\) \[2, 'sport'\]"),
        (GOOD.replace("weight: 1.0}\n  ukraine", "weight: 1.0, 5: a, foo: b}\n  ukraine"),
         r"entries\[0\] \(term 'الناتو'\): unknown field\(s\) \[5, 'foo'\]"),
        (GOOD + "    negative:\n      - {pattern: ناتو عربي, 3: a, zz: b}\n", r"negative\[0\].*unknown field\(s\) \[3, 'zz'\]"),
        (GOOD + "    dampen: {terms: [نهائي], 2: a, bad: b}\n", r"ukraine\.dampen: unknown field\(s\) \[2, 'bad'\]"),
        # nesting deeper than the YAML loader can follow
        ("topics: " + "[" * 5000 + "\n", "not valid YAML: nested too deeply"),
    ],
)
def test_malformed_values_and_keys_are_named(tmp_path, text, expected):
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=expected) as info:
        load_lexicon(str(p))
    assert str(info.value).startswith(f"{p}: ")


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_lexicon(str(tmp_path / "nope.yaml"))


# ------------------------------------------------------------------ the no-term guarantee


_RUSSIA_STORY = (
    "بوتين يستقبل أردوغان في الكرملين",
    "استقبل الرئيس الروسي فلاديمير بوتين نظيره التركي في موسكو لبحث ملف سوريا والطاقة.\n"
    "وقال الكرملين إن الجانبين ناقشا العقوبات الغربية على روسيا والحرب والصراع في المنطقة.\n"
    "وأكد الطرفان توسيع التعاون العسكري وصفقة منظومة إس 400 والانضمام إلى مشاريع الغاز.",
)


@pytest.mark.parametrize("title,body", [_RUSSIA_STORY, ("", ""), ("سيناتور", "كييفو الأطلسي")])
def test_no_term_means_no_topic_whatever_the_threshold(lex, title, body):
    # support words (sanctions, war, accession, ...) are present but no NATO/Ukraine term is
    r = classify(title, body, lex, thresholds={"nato": 1e-9, "ukraine": 1e-9})
    assert r.topics == []
    assert r.nato_score == 0.0 and r.ukraine_score == 0.0
    assert r.evidence == {"nato": [], "ukraine": []}


def test_no_term_means_no_topic_with_support_boost(lex, tmp_path):
    from dataclasses import replace

    boosted = replace(lex, scoring={**lex.scoring, "support_boost": 3.0})
    r = classify(*_RUSSIA_STORY, boosted, thresholds={"nato": 1e-9, "ukraine": 1e-9})
    assert r.topics == [] and r.nato_score == 0.0 and r.ukraine_score == 0.0


def test_support_words_raise_a_matched_topic_only(lex):
    from dataclasses import replace

    title, body = "اجتماع للوزراء", "وتحدث الوزير عن انضمام السويد إلى الناتو.\nوناقش المجتمعون ملفات أخرى."
    plain = classify(title, body, lex).nato_score
    boosted = classify(title, body, replace(lex, scoring={**lex.scoring, "support_boost": 2.0})).nato_score
    assert boosted > plain > 0


def test_match_then_score_is_classify(lex):
    from akhbar.transforms.classify import match_lexicon, score_matches

    title, body = "الناتو يعد أوكرانيا بالدعم", "قال ستولتنبرغ في كييف إن الحلف يدعم أوكرانيا.\nنص آخر."
    r = classify(title, body, lex)
    m = match_lexicon(title, body, lex)
    assert score_matches(lex.topic("nato"), m["nato"], lex.scoring)[0] == r.nato_score
    assert score_matches(lex.topic("ukraine"), m["ukraine"], lex.scoring)[2] == r.evidence["ukraine"]
    assert m["nato"].n_hits >= 2 and m["nato"].title


def test_bad_support_list_is_named(tmp_path):
    from akhbar.transforms.classify import _default_path

    text = _default_path().read_text(encoding="utf-8").replace("    support: [انضمام,", "    support: [7, انضمام,", 1)
    p = tmp_path / "lex.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"topics\.nato\.support"):
        load_lexicon(str(p))


# --- look-alike patterns match their words as written -----------------------------------------
def _evidence(lex, title, body=""):
    return classify(title, body, lex).evidence


@pytest.mark.parametrize("title, topic, term", [
    ("فنلندا تطلب عضوية الناتو", "nato", "الناتو"),  # عضو {term} is "a member", not membership
    ("اجتماع وزراء خارجية الناتو في بروكسل", "nato", "الناتو"),  # خارج {term}, not the foreign ministers
    ("دورية أوكرانية تتعرض لهجوم", "ukraine", "أوكراني"),  # الدوري {term} is the league, not a patrol
    ("مدافع أوكرانية تقصف مواقع روسية", "ukraine", "أوكراني"),  # المدافع {term} is a defender, not cannons
    ("الرئيس المنتخب زيلينسكي يؤدي اليمين", "ukraine", "زيلينسكي"),  # president-elect, not a team
    ("مسؤول في الناتو للعربي الجديد: الحلف سيعزز قواته", "nato", "الناتو"),  # speaking to an outlet
])
def test_look_alike_words_do_not_swallow_other_words(lex, title, topic, term):
    assert _evidence(lex, title)[topic] == [term]


def test_full_weight_for_membership_and_a_discount_for_a_member(lex):
    body = "\n".join(["وقالت الحكومة الفنلندية إن طلب الانضمام سيقدم الأسبوع المقبل إلى مقر الحلف في بروكسل."] * 3)
    membership = classify("فنلندا تطلب عضوية الناتو", body, lex)
    joining = classify("فنلندا تطلب الانضمام إلى الناتو", body, lex)
    member = classify("فنلندا العضو في الناتو تطلب", body, lex)
    assert membership.nato_score == joining.nato_score > member.nato_score > 0


@pytest.mark.parametrize("title, topic", [
    ("الناتو العربي يجتمع في الرياض", "nato"), ("منتخب أوكرانيا يفوز", "ukraine"),
    ("المدافع الأوكراني يسجل هدفا", "ukraine"), ("ملاكم أوكراني ينتزع اللقب", "ukraine"),
])
def test_the_look_alikes_still_apply(lex, title, topic):
    assert _evidence(lex, title)[topic] == []


@pytest.mark.parametrize("negative, expected", [
    ('{pattern: "منتخب {term}", kinds: [team]}', r"'kinds' must be a list of"),
    ('{pattern: "الناتو العربي", kinds: [place]}', r"'kinds' applies to a \{term\} pattern only"),
])
def test_bad_kinds_are_named(tmp_path, negative, expected):
    p = tmp_path / "lex.yaml"
    p.write_text(GOOD.replace("      - {term: كييف, kind: place, weight: 1.0}\n",
                              f"      - {{term: كييف, kind: place, weight: 1.0}}\n    negative:\n      - {negative}\n"),
                 encoding="utf-8")
    with pytest.raises(ValueError, match=expected):
        load_lexicon(str(p))


def test_kinds_limit_a_pattern_to_those_entries(tmp_path):
    p = tmp_path / "lex.yaml"
    p.write_text(GOOD.replace("      - {term: كييف, kind: place, weight: 1.0}\n",
                              "      - {term: كييف, kind: place, weight: 1.0}\n"
                              "      - {term: زيلينسكي, kind: person, weight: 1.0}\n"
                              "    negative:\n      - {pattern: \"منتخب {term}\", kinds: [place]}\n"),
                 encoding="utf-8")
    lx = load_lexicon(str(p))
    assert classify("منتخب كييف", "", lx).evidence["ukraine"] == []
    assert classify("الرئيس المنتخب زيلينسكي", "", lx).evidence["ukraine"] == ["زيلينسكي"]


def test_the_body_is_read_up_to_a_bound(lex):
    """Bounded work per article: a multi-megabyte body is read up to MAX_BODY_CHARS (whole
    paragraphs), so evidence beyond it does not count."""
    from akhbar.transforms.classify import MAX_BODY_CHARS

    story = "\n".join(["اجتمع وزراء دفاع حلف الناتو في بروكسل لبحث دعم أوكرانيا وأمن الحلف الأطلسي."] * 3)
    filler = "\n".join(["نص عادي عن الطقس والأسواق المحلية وحركة المرور في المدينة اليوم."] * (MAX_BODY_CHARS // 60))
    assert len(filler) > MAX_BODY_CHARS
    first = classify("", story + "\n" + filler, lex)
    assert first.evidence["nato"] and first.evidence["ukraine"]
    last = classify("", filler + "\n" + story, lex)
    assert last.topics == [] and not last.evidence["nato"] and not last.evidence["ukraine"]
