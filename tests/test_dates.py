import calendar
import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.transforms.dates import (
    choose_published,
    iter_arabic_dates,
    parse_arabic_date,
    parse_feed_date,
    plausible,
    undated_words,
)

NOW = datetime(2025, 10, 20, 12, 0, tzinfo=UTC)


def utc(*a):
    return datetime(*a, tzinfo=UTC)


# --- parse_arabic_date: examples -------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [
        ("29 تشرين الثاني 2022", utc(2022, 11, 29)),
        ("الثلاثاء ٢٩ تشرين الثاني ٢٠٢٢ - 10:30", utc(2022, 11, 29, 10, 30)),
        ("15/10/2025", utc(2025, 10, 15)),
        ("2025-10-15", utc(2025, 10, 15)),
        ("الأربعاء   15:59   15/10/2025", utc(2025, 10, 15, 15, 59)),
        ("نشر في: الاثنين 3 آب 2020 - 09:05", utc(2020, 8, 3, 9, 5)),
        ("آخر تحديث ۱۲ جویلیة ۲۰۲۳", utc(2023, 7, 12)),
        ("12 جويليه 2023", utc(2023, 7, 12)),
        ("1 ماي 2021 15:00", utc(2021, 5, 1, 15)),
        ("الأحد 7 أبريل، 2024 الساعة 09:15 ص", utc(2024, 4, 7, 9, 15)),
        ("5 مايو 2024م - 10:30 م", utc(2024, 5, 5, 22, 30)),
        ("بتاريخ 29 تشرين الثاني/نوفمبر 2022", utc(2022, 11, 29)),
        ("كتب في 4 إبريل 2023", utc(2023, 4, 4)),
        ("4 ابريل 2023", utc(2023, 4, 4)),
        ("20 يونيه 2019", utc(2019, 6, 20)),
        ("3 غشت 2020", utc(2020, 8, 3)),
        ("9 أوت 2020", utc(2020, 8, 9)),
        ("9 فيفري 2020", utc(2020, 2, 9)),
        ("نوفمبر 29, 2022 10:00", utc(2022, 11, 29, 10)),
        ("2025-10-15T10:30:00+03:00", utc(2025, 10, 15, 7, 30)),
        ("15/10/2025 10:30 GMT+3", utc(2025, 10, 15, 7, 30)),
        ("15.10.2025", utc(2025, 10, 15)),
        ("10/15/2025", utc(2025, 10, 15)),  # impossible as d/m/y, read as m/d/y
        # The Hijri date comes first but its year is out of range; the Gregorian one is used.
        ("1444/05/05 هـ الموافق 29/11/2022", utc(2022, 11, 29)),
        # An impossible date is skipped, the next one is taken.
        ("31 شباط 2022 ثم 1 آذار 2022", utc(2022, 3, 1)),
    ],
)
def test_parse_examples(text, expected):
    got = parse_arabic_date(text)
    assert got == expected
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_first_visible_date_wins():
    text = "حدث في 2 آذار 2021، وأعيد نشره في 15/10/2025"
    assert parse_arabic_date(text) == utc(2021, 3, 2)
    text = "تحديث 15/10/2025 — الخبر الأصلي 2 آذار 2021"
    assert parse_arabic_date(text) == utc(2025, 10, 15)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "لا يوجد تاريخ هنا",
        "ماي 2021",  # no day
        "12 مايكروسوفت 2020",  # "ماي" inside a longer word
        "12 آباء 2020",  # "آب" inside a longer word
        "12 يمارس 2020",  # "مارس" inside a longer word
        "32 مارس 2020",
        "عدد القتلى 15 والجرحى 2020",
        "1444/05/05",
    ],
)
def test_parse_none(text):
    assert parse_arabic_date(text) is None


# --- parse_arabic_date: round trip property ------------------------------------------

FAMILIES = {
    "levant": {
        1: ["كانون الثاني", "كانون ثاني"], 2: ["شباط"], 3: ["آذار", "اذار"], 4: ["نيسان"],
        5: ["أيار", "ايار"], 6: ["حزيران"], 7: ["تموز"], 8: ["آب"], 9: ["أيلول", "ايلول"],
        10: ["تشرين الأول", "تشرين الاول"], 11: ["تشرين الثاني", "تشرين الثانى"],
        12: ["كانون الأول", "كانون الاول"],
    },
    "egypt": {
        1: ["يناير"], 2: ["فبراير"], 3: ["مارس"], 4: ["أبريل", "ابريل", "إبريل"], 5: ["مايو"],
        6: ["يونيو", "يونيه"], 7: ["يوليو", "يوليه"], 8: ["أغسطس", "اغسطس"], 9: ["سبتمبر"],
        10: ["أكتوبر", "اكتوبر"], 11: ["نوفمبر"], 12: ["ديسمبر"],
    },
    "maghreb": {
        1: ["جانفي"], 2: ["فيفري"], 3: ["مارس"], 4: ["أفريل", "افريل"], 5: ["ماي"], 6: ["جوان"],
        7: ["جويلية", "جويليه"], 8: ["أوت", "اوت"], 9: ["سبتمبر"], 10: ["أكتوبر", "اكتوبر"],
        11: ["نوفمبر"], 12: ["ديسمبر"],
    },
}
WEEKDAYS = ["", "الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد"]
DIGITS = {"ascii": "0123456789", "arabic": "٠١٢٣٤٥٦٧٨٩", "persian": "۰۱۲۳۴۵۶۷۸۹"}
PREFIXES = ["", "نشر بتاريخ ", "آخر تحديث: ", "بيروت - "]
SUFFIXES = ["", " | أخبار العالم", "، وفق ما أفاد مراسلنا"]


@st.composite
def written_dates(draw):
    year = draw(st.integers(1990, 2030))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, calendar.monthrange(year, month)[1]))
    clock = draw(st.one_of(st.none(), st.tuples(st.integers(0, 23), st.integers(0, 59))))
    family = draw(st.sampled_from(sorted(FAMILIES)))
    name = draw(st.sampled_from(FAMILIES[family][month]))
    style = draw(st.sampled_from(["name", "name", "dmy", "ymd", "time_first"]))
    pad = draw(st.booleans())
    weekday = draw(st.sampled_from(WEEKDAYS))
    d = f"{day:02d}" if pad else str(day)
    hm = f"{clock[0]:02d}:{clock[1]:02d}" if clock else ""
    if style == "name":
        body = f"{d} {name} {year}" + (f" - {hm}" if hm else "")
    elif style == "dmy":
        sep = draw(st.sampled_from("/-."))
        body = f"{d}{sep}{month:02d}{sep}{year}" + (f" {hm}" if hm else "")
    elif style == "ymd":
        body = f"{year}-{month:02d}-{day:02d}" + (f" {hm}" if hm else "")
    else:
        body = (f"{hm}   " if hm else "") + f"{d}/{month}/{year}"
    text = f"{weekday} {body}".strip()
    digits = DIGITS[draw(st.sampled_from(sorted(DIGITS)))]
    text = text.translate(str.maketrans("0123456789", digits))
    text = draw(st.sampled_from(PREFIXES)) + text + draw(st.sampled_from(SUFFIXES))
    expected = utc(year, month, day, *(clock or (0, 0)))
    return text, expected


@settings(max_examples=300, deadline=None)
@given(written_dates())
def test_round_trip(case):
    text, expected = case
    assert parse_arabic_date(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises(text):
    got = parse_arabic_date(text)
    assert got is None or got.tzinfo is not None


# --- plausible / choose_published ------------------------------------------------------

def test_plausible():
    assert plausible(utc(2025, 10, 19), now=NOW)
    assert plausible(datetime(2025, 10, 19), now=NOW)  # naive taken as UTC
    assert plausible(NOW + timedelta(hours=23), now=NOW)
    assert not plausible(NOW + timedelta(days=2), now=NOW)
    assert not plausible(utc(1989, 12, 31), now=NOW)
    assert not plausible(None, now=NOW)
    assert plausible(utc(1980, 1, 1), now=NOW, earliest=utc(1970, 1, 1))
    assert plausible(NOW + timedelta(days=5), now=NOW, max_future=timedelta(days=7))


def test_choose_first_plausible():
    cands = [
        ("feed", None),
        ("metadata", utc(2030, 1, 5)),  # future
        ("visible_text", datetime(2025, 10, 15, 9, 0, tzinfo=timezone(timedelta(hours=3)))),
    ]
    assert choose_published(cands, now=NOW) == (utc(2025, 10, 15, 6, 0), "visible_text")
    assert choose_published([("feed", utc(2025, 10, 1))], now=NOW) == (utc(2025, 10, 1), "feed")
    assert choose_published([], now=NOW) == (None, None)
    assert choose_published([("feed", None), ("metadata", utc(1970, 1, 1))], now=NOW) == (None, None)


def test_new_year_metadata_yields_to_same_year_text():
    cands = [("metadata", utc(2022, 1, 1)), ("visible_text", utc(2022, 11, 29, 10, 30))]
    assert choose_published(cands, now=NOW) == (utc(2022, 11, 29, 10, 30), "visible_text")
    # naive midnight behaves the same
    cands = [("metadata", datetime(2022, 1, 1)), ("visible_text", utc(2022, 11, 29))]
    assert choose_published(cands, now=NOW) == (utc(2022, 11, 29), "visible_text")


def test_new_year_metadata_kept_otherwise():
    # later candidate in another year, or implausible, or missing: keep the metadata
    for later in (utc(2023, 3, 1), utc(2031, 5, 1), None):
        cands = [("metadata", utc(2022, 1, 1)), ("visible_text", later)]
        assert choose_published(cands, now=NOW) == (utc(2022, 1, 1), "metadata")
    # a real timestamp at new year's midnight elsewhere is not an artefact of the feed
    cands = [("feed", utc(2022, 1, 1)), ("visible_text", utc(2022, 11, 29))]
    assert choose_published(cands, now=NOW) == (utc(2022, 1, 1), "feed")
    # not midnight: not the artefact
    cands = [("metadata", utc(2022, 1, 1, 8, 0)), ("visible_text", utc(2022, 11, 29))]
    assert choose_published(cands, now=NOW) == (utc(2022, 1, 1, 8, 0), "metadata")
    # an earlier plausible feed date still wins outright
    cands = [("feed", utc(2022, 5, 5)), ("metadata", utc(2022, 1, 1)), ("visible_text", utc(2022, 11, 29))]
    assert choose_published(cands, now=NOW) == (utc(2022, 5, 5), "feed")


# --- parse_feed_date -------------------------------------------------------------------

@pytest.mark.parametrize(
    "value, expected",
    [
        (time.struct_time((2025, 10, 15, 7, 30, 0, 2, 288, 0)), utc(2025, 10, 15, 7, 30)),
        (time.struct_time((2016, 12, 31, 23, 59, 60, 5, 366, 0)), utc(2016, 12, 31, 23, 59, 59)),
        ("Wed, 15 Oct 2025 10:30:00 +0300", utc(2025, 10, 15, 7, 30)),
        ("Wed, 15 Oct 2025 10:30:00 GMT", utc(2025, 10, 15, 10, 30)),
        ("Wed, 15 Oct 2025 10:30:00", utc(2025, 10, 15, 10, 30)),
        ("2025-10-15T10:30:00Z", utc(2025, 10, 15, 10, 30)),
        ("2025-10-15T10:30:00+03:00", utc(2025, 10, 15, 7, 30)),
        ("2025-10-15 10:30:00", utc(2025, 10, 15, 10, 30)),
        ("2025-10-15", utc(2025, 10, 15)),
        ("الأربعاء 15 أكتوبر 2025 - 10:30", utc(2025, 10, 15, 10, 30)),
        # zone names as meant in the region (email.utils: AST = Atlantic, EET/GST = UTC)
        ("Wed, 15 Oct 2025 10:30:00 AST", utc(2025, 10, 15, 7, 30)),
        ("Wed, 15 Oct 2025 10:30:00 EET", utc(2025, 10, 15, 8, 30)),
        ("Wed, 15 Oct 2025 10:30:00 GST", utc(2025, 10, 15, 6, 30)),
        ("Fri, 25 May 2018 10:30:00 KSA", utc(2018, 5, 25, 7, 30)),
        ("Wed, 15 Oct 2025 10:30:00 (IRST)", utc(2025, 10, 15, 7, 0)),
        ("Wed, 15 Oct 2025 10:30:00 GMT+3", utc(2025, 10, 15, 7, 30)),
        ("Wed, 15 Oct 2025 10:30:00 UTC+03:00", utc(2025, 10, 15, 7, 30)),
        ("Wed, 15 Oct 2025 10:30:00 EST", utc(2025, 10, 15, 15, 30)),  # names email.utils knows stay its own
        (datetime(2025, 10, 15, 10, 30), utc(2025, 10, 15, 10, 30)),
        (date(2025, 10, 15), utc(2025, 10, 15)),
    ],
)
def test_parse_feed_date(value, expected):
    assert parse_feed_date(value) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "not a date", 12345, object(), (2025, 13, 40, 0, 0, 0),
                                   "2025-99-99", b"2025-10-15"])
def test_parse_feed_date_bad(value):
    assert parse_feed_date(value) is None


# --- URL and Hijri dates ------------------------------------------------------------------
from akhbar.transforms.dates import date_from_url, parse_hijri_date  # noqa: E402


@pytest.mark.parametrize("url, expected", [
    ("https://www.youm7.com/story/2020/8/24/%D9%88%D8%B2%D9%8A%D8%B1/4943459", (2020, 8, 24)),
    ("https://www.albayan.ae/across-the-uae/news-and-reports/2020-06-03-1.3874341", (2020, 6, 3)),
    ("https://arabic.example.com/arab_world/202003171044893040-story/", (2020, 3, 17)),
    ("https://ex.com/2024/05/12/story.html", (2024, 5, 12)),
    ("https://ex.com/news/2024_05_12/story", (2024, 5, 12)),
    ("https://www.beirutobserver.com/2020/11/2338761/", None),  # year and month only
    ("https://ex.com/a?date=2020-01-01", None),  # query strings are not read
    ("https://2020-01-01.ex.com/a", None),  # nor host names
    ("https://ex.com/2023/02/30/x", None),  # no such day
    ("http://www.aryanews.com/News/120200622120908039/x", None),  # an id, not a date
    ("", None),
])
def test_date_from_url(url, expected):
    got = date_from_url(url)
    assert (got and (got.year, got.month, got.day)) == expected or (got is None and expected is None)
    if got is not None:
        assert got.tzinfo is not None and (got.hour, got.minute) == (0, 0)


@pytest.mark.parametrize("text, expected", [
    ("الثلاثاء 5 جمادى الأولى 1444 هـ الموافق", (2022, 11, 29)),
    ("15 رمضان 1445هـ", (2024, 3, 25)),
    ("1 ذو الحجة 1443", (2022, 6, 30)),
    ("١ ذي الحجة ١٤٤٣ هـ", (2022, 6, 30)),
    ("3 شوال، 1441 هجري", (2020, 5, 26)),
    ("10 ربيع الآخر 1446", (2024, 10, 13)),
    ("صفر 12 1444", None),  # not day month year
    ("31 رجب 1445", None),  # Hijri months have 29 or 30 days
    ("5 جمادى الأولى 1200", None),  # outside the Umm al-Qura table
    ("ارتفع عدد الإصابات إلى 1444 في شهر رمضان", None),
])
def test_parse_hijri_date(text, expected):
    got = parse_hijri_date(text)
    assert (got and (got.year, got.month, got.day)) == expected or (got is None and expected is None)


def test_iter_arabic_dates_in_page_order_and_the_first_is_parse_arabic_date():
    text = "نشر في 3 مارس 2024 — موعد القمة 5/1/2030 ثم 2024-03-04T10:00"
    found = list(iter_arabic_dates(text))
    assert found == [utc(2024, 3, 3), utc(2030, 1, 5), utc(2024, 3, 4, 10)]
    assert parse_arabic_date(text) == found[0]
    assert list(iter_arabic_dates("")) == [] and list(iter_arabic_dates("لا تاريخ هنا")) == []


def test_a_bracketed_gmt_offset_is_read():
    assert parse_arabic_date("3 يناير 2024 - 02:15 (GMT+0400)") == utc(2024, 1, 2, 22, 15)


@pytest.mark.parametrize("text, expected", [
    ("25 مايو 2018 10:30 بتوقيت مكة المكرمة", utc(2018, 5, 25, 7, 30)),
    ("25 مايو 2018 - 10:30 بتوقيت مكه", utc(2018, 5, 25, 7, 30)),
    # daylight saving as the place kept it: Jerusalem +3 in May, +2 in January
    ("الجمعة 25 مايو 2018 - 10:30 بتوقيت القدس", utc(2018, 5, 25, 7, 30)),
    ("25 يناير 2018 - 10:30 بتوقيت القدس", utc(2018, 1, 25, 8, 30)),
    ("نشر في 25 يوليو 2018 - 10:30 بتوقيت القاهرة", utc(2018, 7, 25, 8, 30)),  # Egypt had no DST in 2018
    ("25 يناير 2018 - 10:30 (توقيت أبو ظبي)", utc(2018, 1, 25, 6, 30)),
    ("25 مايو 2018 - 10:30 حسب توقيت بيروت", utc(2018, 5, 25, 7, 30)),
    ("10:30 م بتوقيت غرينتش 25/5/2018", utc(2018, 5, 25, 22, 30)),
    # Al Arabiya's stamp: the Saudi time, then the same instant in GMT
    ("آخر تحديث: الجمعة 25 مايو 2018 KSA 10:30 - GMT 07:30", utc(2018, 5, 25, 7, 30)),
    ("الجمعة 25 مايو 2018 10:30 KSA", utc(2018, 5, 25, 7, 30)),
    # a name that is two places (Amman or Oman) names no zone: read as UTC like a bare time
    ("25 مايو 2018 - 10:30 بتوقيت عمان", utc(2018, 5, 25, 10, 30)),
])
def test_a_time_named_by_its_place_or_zone_is_read_in_that_zone(text, expected):
    assert parse_arabic_date(text) == expected
    assert undated_words(text) == []  # the zone is part of the date stamp, not words of a sentence


@pytest.mark.parametrize("line, rest", [
    # "توقيت" in a sentence is "timing", not a zone: the line is prose, not a date stamp
    ("الرئاسة تحدد توقيت الانتخابات 25 مايو 2018", ["الرئاسه", "تحدد", "توقيت", "الانتخابات"]),
    ("تغيير التوقيت الشتوي 28 أكتوبر 2018", ["تغيير", "التوقيت", "الشتوي"]),
    ("العمل بالتوقيت الصيفي 25 مارس 2018", ["العمل", "بالتوقيت", "الصيفي"]),
    ("25 مايو 2018 - 10:30 بتوقيت مصراتة", []),  # a place that starts with a listed one (مصر)
])
def test_only_a_zone_phrase_is_taken_out_of_a_line(line, rest):
    assert undated_words(line) == rest


@pytest.mark.parametrize("text, expected", [
    ("TASKSA 10:30 25 مايو 2018", utc(2018, 5, 25, 10, 30)),  # KSA inside a word is no zone
    ("25 مايو 2018 10:30 KSA+1", utc(2018, 5, 25, 10, 30)),  # nor one followed by an offset
    ("25 مايو 2018 - 10:30 بتوقيت مصراتة", utc(2018, 5, 25, 10, 30)),  # nor a place that starts like one
    # Palestine's daylight saving, not Israel's: on 10 April 2024 Hebron was +2, Jerusalem's +3
    ("10 أبريل 2024 - 10:30 بتوقيت القدس", utc(2024, 4, 10, 8, 30)),
])
def test_look_alikes_of_a_named_zone(text, expected):
    assert parse_arabic_date(text) == expected


def test_every_place_names_a_zone_this_machine_knows():
    from zoneinfo import ZoneInfo

    from akhbar.transforms.dates import CLOCK_ZONE_NAMES, PLACE_ZONES

    for zone in {*PLACE_ZONES.values(), *CLOCK_ZONE_NAMES.values()}:
        ZoneInfo(zone)


@pytest.mark.parametrize("line, rest", [
    ("الأربعاء 15:59 15/10/2025", []),
    ("نشر في: 19 فبراير 2018 - 14:03 بتوقيت غرينتش", []),
    ("بيروت 12 كانون الثاني 2024", ["بيروت"]),
    ("وتجرى الانتخابات الرئاسية في 5 نوفمبر 2024", ["وتجري", "الانتخابات", "الرئاسيه", "في"]),
    ("لا تاريخ هنا", None),
])
def test_undated_words(line, rest):
    assert undated_words(line) == rest
