"""Publication dates for Arabic news pages.

Everything here is pure (no I/O, no clock reads): callers pass ``now`` explicitly.

* :func:`parse_arabic_date` finds the first date written in visible Arabic text
  (:func:`iter_arabic_dates` every date, in order), in any of
  the three Gregorian month-name families used in the Arab world (Levantine/Iraqi Syriac
  names, Egyptian/Gulf names borrowed from European languages, Maghrebi names borrowed
  from French, plus the Moroccan variants), or in numeric form (``15/10/2025``,
  ``2025-10-15``), with an optional time before or after it.
* :func:`parse_feed_date` turns what feedparser gives (``*_parsed`` struct_time, or the raw
  RFC-822 / ISO-8601 string) into an aware UTC datetime; zone names are read as the Arab world
  means them (:data:`ZONE_OFFSETS`), where feedparser and ``email.utils`` take ``AST`` for
  Atlantic time and every name they do not know (``EET``, ``GST``, ``MSK``…) for UTC.
* :func:`plausible` and :func:`choose_published` pick the date to store from candidates
  coming from several sources, in priority order.

All returned datetimes are timezone-aware and in UTC. A visible time is read in the zone written
with it: an offset (``GMT+3``), ``KSA``, or a place (``بتوقيت مكة المكرمة``, ``بتوقيت القاهرة``:
:data:`PLACE_ZONES`, daylight saving included). A time written with no zone is taken to be UTC,
because most Arabic pages do not say which zone they mean.
"""
from __future__ import annotations

import calendar
import email.utils
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

__all__ = [
    "EARLIEST",
    "MONTHS",
    "as_utc",
    "choose_published",
    "date_from_url",
    "iter_arabic_dates",
    "parse_arabic_date",
    "parse_hijri_date",
    "parse_feed_date",
    "plausible",
    "undated_words",
    "ZONE_OFFSETS",
    "written_zone",
]

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)

# ---------------------------------------------------------------------------------------
# Folding. Dates are searched in a folded copy of the text, so one spelling per month
# suffices in the tables below: hamza-carrying alefs become bare alef, ta marbuta becomes
# heh, alef maqsura and Farsi yeh become yeh, keheh becomes kaf, and both kinds of
# Eastern digits become ASCII. Diacritics, tatweel and invisible controls are dropped.
# ---------------------------------------------------------------------------------------
_FOLD = {
    0x0623: "\u0627",  # أ
    0x0625: "\u0627",  # إ
    0x0622: "\u0627",  # آ
    0x0671: "\u0627",  # ٱ
    0x0629: "\u0647",  # ة -> ه
    0x0649: "\u064a",  # ى -> ي
    0x06CC: "\u064a",  # ی -> ي
    0x06A9: "\u0643",  # ک -> ك
    0x066B: ".",  # Arabic decimal separator
    0xFF1A: ":",  # fullwidth colon
}
_FOLD |= {0x0660 + i: str(i) for i in range(10)}
_FOLD |= {0x06F0 + i: str(i) for i in range(10)}
_FOLD |= {c: None for c in range(0x064B, 0x0660)}  # harakat
_FOLD |= {c: None for c in (0x0670, 0x0640, 0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F,
                            0x2060, 0xFEFF, 0x00AD)}
_FOLD |= {c: None for c in range(0x202A, 0x202F)}  # embedding / override controls
_FOLD |= {c: None for c in range(0x2066, 0x206A)}  # isolates


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_FOLD)


# Arabic letters after folding (used for whole-word lookarounds; ``\b`` is useless here
# because digits and Arabic letters are both ``\w``).
_L = "\u0621-\u063a\u0641-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff\u0750-\u077f"

# ---------------------------------------------------------------------------------------
# Month names, written in folded form. Several spellings may map to one month; the same
# spelling may appear in two families (مارس, سبتمبر ...), which is harmless.
# ---------------------------------------------------------------------------------------
MONTHS: dict[str, dict[int, tuple[str, ...]]] = {
    # Levantine / Iraqi (Syriac-derived names).
    "levant": {
        1: ("كانون الثاني", "كانون ثاني"),
        2: ("شباط",),
        3: ("اذار",),
        4: ("نيسان",),
        5: ("ايار",),
        6: ("حزيران",),
        7: ("تموز",),
        8: ("اب",),
        9: ("ايلول",),
        10: ("تشرين الاول", "تشرين اول"),
        11: ("تشرين الثاني", "تشرين ثاني"),
        12: ("كانون الاول", "كانون اول"),
    },
    # Egypt, Sudan, the Gulf (names taken from Latin/English).
    "egypt": {
        1: ("يناير",),
        2: ("فبراير",),
        3: ("مارس",),
        4: ("ابريل",),
        5: ("مايو",),
        6: ("يونيو", "يونيه"),
        7: ("يوليو", "يوليه"),
        8: ("اغسطس",),
        9: ("سبتمبر",),
        10: ("اكتوبر",),
        11: ("نوفمبر",),
        12: ("ديسمبر",),
    },
    # Algeria, Tunisia (names taken from French).
    "maghreb": {
        1: ("جانفي", "جانفيه"),
        2: ("فيفري", "فيفريه"),
        3: ("مارس",),
        4: ("افريل",),
        5: ("ماي",),
        6: ("جوان",),
        7: ("جويليه", "جوليه"),
        8: ("اوت",),
        9: ("سبتمبر",),
        10: ("اكتوبر",),
        11: ("نوفمبر",),
        12: ("ديسمبر",),
    },
    # Morocco, Mauritania (a mix of Spanish/French-derived names).
    "morocco": {
        1: ("يناير",),
        2: ("فبراير",),
        3: ("مارس",),
        4: ("ابريل",),
        5: ("ماي",),
        6: ("يونيو",),
        7: ("يوليوز",),
        8: ("غشت",),
        9: ("شتنبر",),
        10: ("اكتوبر",),
        11: ("نونبر",),
        12: ("دجنبر",),
    },
}

_MONTH_BY_NAME: dict[str, int] = {}
for _family in MONTHS.values():
    for _num, _names in _family.items():
        for _name in _names:
            _MONTH_BY_NAME[_name] = _num


def _alternation(names) -> str:
    """A regex alternation of folded ``names``: longest first, so "كانون الثاني" wins over any
    shorter prefix; spaces inside a name match any run of whitespace."""
    return "|".join(r"\s+".join(map(re.escape, n.split())) for n in sorted(names, key=len, reverse=True))


_MONTH = rf"(?<![{_L}])(?:{_alternation(_MONTH_BY_NAME)})(?![{_L}])"


# Places Arabic pages name after a time ("10:30 بتوقيت مكة المكرمة", "حسب توقيت القاهرة") and the
# zone each means (daylight saving included). "بتوقيت القدس" is how Palestinian outlets give their
# time: Palestine's zone, whose daylight saving starts and ends weeks apart from Israel's. Names
# that are not one place are left out: عمان is Amman or Oman, طرابلس Tripoli in Libya or in
# Lebanon; their times are read as UTC, as any time without a zone.
PLACE_ZONES = {
    "مكة المكرمة": "Asia/Riyadh", "مكة": "Asia/Riyadh", "السعودية": "Asia/Riyadh", "الرياض": "Asia/Riyadh",
    "جدة": "Asia/Riyadh", "غرينتش": "UTC", "غرينيتش": "UTC", "جرينتش": "UTC", "جرينيتش": "UTC",
    "القاهرة": "Africa/Cairo", "مصر": "Africa/Cairo", "القدس": "Asia/Hebron", "فلسطين": "Asia/Hebron",
    "غزة": "Asia/Gaza", "بيروت": "Asia/Beirut", "لبنان": "Asia/Beirut", "دمشق": "Asia/Damascus",
    "سوريا": "Asia/Damascus", "الأردن": "Asia/Amman", "بغداد": "Asia/Baghdad", "العراق": "Asia/Baghdad",
    "الكويت": "Asia/Kuwait", "الدوحة": "Asia/Qatar", "قطر": "Asia/Qatar", "المنامة": "Asia/Bahrain",
    "البحرين": "Asia/Bahrain", "أبوظبي": "Asia/Dubai", "أبو ظبي": "Asia/Dubai", "دبي": "Asia/Dubai",
    "الإمارات": "Asia/Dubai", "مسقط": "Asia/Muscat", "صنعاء": "Asia/Aden", "اليمن": "Asia/Aden",
    "الخرطوم": "Africa/Khartoum", "السودان": "Africa/Khartoum", "ليبيا": "Africa/Tripoli",
    "تونس": "Africa/Tunis", "الجزائر": "Africa/Algiers", "الرباط": "Africa/Casablanca",
    "المغرب": "Africa/Casablanca", "نواكشوط": "Africa/Nouakchott", "موريتانيا": "Africa/Nouakchott",
    "أنقرة": "Europe/Istanbul", "إسطنبول": "Europe/Istanbul", "اسطنبول": "Europe/Istanbul",
    "تركيا": "Europe/Istanbul", "طهران": "Asia/Tehran", "إيران": "Asia/Tehran", "موسكو": "Europe/Moscow",
    "لندن": "Europe/London", "باريس": "Europe/Paris", "برلين": "Europe/Berlin", "واشنطن": "America/New_York",
    "نيويورك": "America/New_York",
}
_PLACE_ZONE = {" ".join(_fold(k).split()): v for k, v in PLACE_ZONES.items()}
_PLACES = _alternation(_PLACE_ZONE)
# Zone names written with a visible time ("KSA 10:30 - GMT 07:30" on Al Arabiya's pages)
CLOCK_ZONE_NAMES = {"KSA": "Asia/Riyadh"}


def _time(p: str) -> str:
    """A clock time with named groups prefixed by ``p`` (optionally with AM/PM and zone: an
    offset, a name of :data:`CLOCK_ZONE_NAMES` before or after it, or "بتوقيت <place>")."""
    names = "|".join(CLOCK_ZONE_NAMES)
    return (
        rf"(?:(?<![A-Za-z])(?P<{p}pre>{names})\s*)?"
        rf"(?:الساعه\s*)?"
        rf"(?<!\d)(?P<{p}H>[01]?\d|2[0-3]):(?P<{p}M>[0-5]\d)(?::(?P<{p}S>[0-5]\d)(?:\.\d+)?)?(?!\d)"
        rf"(?:\s*(?P<{p}ampm>صباحا|مساء|ظهرا|ص|م|[AaPp]\.?[Mm]\.?)(?![{_L}A-Za-z]))?"
        rf"(?:\s*\(?(?P<{p}tz>Z|(?:GMT|UTC)\s*[+-]\d{{1,2}}(?::?\d{{2}})?|[+-]\d{{2}}:?\d{{2}}|GMT|UTC|{names})\)?"
        rf"(?![A-Za-z\d/.\-+])"
        rf"|\s*\(?(?:ب|حسب\s+)?توقيت\s+(?P<{p}place>{_PLACES})(?![{_L}])\)?)?"
    )


# Separator between a date and a time: spaces with at most one dash/bar/comma/bullet.
_SEP = r"\s*[-\u2013\u2014|\u060c,\u2022\u00b7]?\s*"
_YEAR = r"(?P<y>(?:19|20)\d{2})(?!\d)"
_BEFORE = rf"(?:{_time('b')}{_SEP})?"
_AFTER = rf"(?:{_SEP}(?:T)?{_time('a')})?"
_CE = rf"(?:\s*م(?![{_L}]))?"  # "2022م": the year is marked as Gregorian

# "29 تشرين الثاني 2022", "29 تشرين الثاني/نوفمبر 2022", "5 من شهر مايو، 2024م - 10:30"
_TEXT_RE = re.compile(
    _BEFORE
    + r"(?<!\d)(?P<d>[0-3]?\d)(?!\d)\s*(?:من\s+)?(?:شهر\s+)?"
    + rf"(?P<m>{_MONTH})"
    + rf"(?:\s*[/(\-]\s*{_MONTH}\s*\)?)?"
    + r"\s*[,\u060c]?\s*"
    + _YEAR
    + _CE
    + _AFTER
)
# Month first, as some localized CMS templates print it: "مايو 5, 2024", "نوفمبر 29 2022"
_MDY_TEXT_RE = re.compile(
    _BEFORE
    + rf"(?P<m>{_MONTH})\s*(?P<d>[0-3]?\d)(?!\d)\s*[,\u060c]?\s*"
    + _YEAR
    + _CE
    + _AFTER
)
# "15/10/2025", "15-10-2025", "15.10.2025" (day first, as on Arabic sites)
_DMY_RE = re.compile(
    _BEFORE
    + r"(?<![\d/.\-])(?P<d>[0-3]?\d)(?P<sep>[/.\-])(?P<m>[01]?\d)(?P=sep)"
    + _YEAR
    + r"(?![/.\-]\d)"
    + _CE
    + _AFTER
)
# "2025-10-15", "2025/10/15", "2025-10-15T10:30:00Z"
_YMD_RE = re.compile(
    _BEFORE
    + r"(?<![\d/.\-])(?P<y>(?:19|20)\d{2})(?P<sep>[/.\-])(?P<m>[01]?\d)(?P=sep)(?P<d>[0-3]?\d)(?![\d/.\-]\d|\d)"
    + _CE
    + _AFTER
)

_PM = {"م", "مساء", "pm", "p.m.", "p.m", "pm."}
_AM = {"ص", "صباحا", "am", "a.m.", "a.m", "am."}


def _signed_offset(s: str) -> timedelta | None:
    """``+3``, ``-04:30``, ``+0400`` as a time difference; ``None`` if ``s`` is not such an offset
    or is out of range (more than 14 hours, or 60 minutes and more)."""
    m = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", s)
    if not m:
        return None
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return -delta if m.group(1) == "-" else delta


def _offset(tz: str | None) -> timezone:
    if not tz:
        return UTC
    s = re.sub(r"\s+|GMT|UTC", "", tz)
    if s in ("", "Z"):
        return UTC
    delta = _signed_offset(s)
    return UTC if delta is None else timezone(delta)


def _zone(m: re.Match[str], p: str) -> tzinfo:
    """The zone a clock time of group prefix ``p`` was written in (UTC when it names none)."""
    place = m.group(f"{p}place")
    if place is not None:
        return ZoneInfo(_PLACE_ZONE[" ".join(place.split())])
    tz = m.group(f"{p}tz") or m.group(f"{p}pre")
    if tz in CLOCK_ZONE_NAMES:
        return ZoneInfo(CLOCK_ZONE_NAMES[tz])
    return _offset(tz)


def _clock(m: re.Match[str]) -> tuple[int, int, int, tzinfo]:
    """Hour, minute, second and zone from whichever time group matched (after wins)."""
    for p in ("a", "b"):
        if m.group(f"{p}H") is not None:
            h, mi, s = int(m.group(f"{p}H")), int(m.group(f"{p}M")), int(m.group(f"{p}S") or 0)
            ampm = (m.group(f"{p}ampm") or "").lower()
            if ampm in _PM and h < 12:
                h += 12
            elif ampm in _AM and h == 12:
                h = 0
            return h, mi, s, _zone(m, p)
    return 0, 0, 0, UTC


def _build(m: re.Match[str], *, month_is_name: bool, allow_swap: bool) -> datetime | None:
    y, d = int(m.group("y")), int(m.group("d"))
    if month_is_name:
        mo = _MONTH_BY_NAME[" ".join(m.group("m").split())]
    else:
        mo = int(m.group("m"))
        if allow_swap and mo > 12 and 1 <= d <= 12:
            d, mo = mo, d  # an American month/day/year slipped in
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
        return None
    h, mi, s, tz = _clock(m)
    return datetime(y, mo, d, h, mi, s, tzinfo=tz).astimezone(UTC)


_PATTERNS = (
    (_TEXT_RE, True, False),
    (_MDY_TEXT_RE, True, False),
    (_DMY_RE, False, True),
    (_YMD_RE, False, False),
)


def iter_arabic_dates(text: str) -> Iterator[datetime]:
    """Every date visible in ``text``, in the order they are written, as aware UTC datetimes.

    Where two readings overlap, the one starting first wins (at the same start, the pattern
    tried first: names of months before numbers). Lazy: each pattern is searched only as far as needed, so
    taking the first few dates of a long text costs little more than taking the first.
    """
    if not text or not isinstance(text, str):
        return
    s = _fold(text)

    def next_valid(i: int, pos: int) -> tuple[int, int, int, datetime] | None:
        rx, by_name, swap = _PATTERNS[i]
        for m in rx.finditer(s, pos):
            dt = _build(m, month_is_name=by_name, allow_swap=swap)
            if dt is not None:
                return m.start(), i, m.end(), dt
        return None

    heads = [next_valid(i, 0) for i in range(len(_PATTERNS))]
    while True:
        live = [h for h in heads if h is not None]
        if not live:
            return
        _start, _pattern, end, dt = min(live, key=lambda h: (h[0], h[1]))
        yield dt
        heads = [h if h is None or h[0] >= end else next_valid(i, end) for i, h in enumerate(heads)]


def parse_arabic_date(text: str) -> datetime | None:
    """The first date visible in ``text``, as an aware UTC datetime, or ``None``.

    Accepts Arabic month names from all families (with or without hamza, ة or ه), Western,
    Arabic-Indic or Persian digits, an optional weekday (ignored), and an optional time
    just before or after the date. Numeric dates are read day/month/year unless they start
    with the year; an impossible d/m/y (``10/15/2025``) is retried as m/d/y.
    """
    return next(iter_arabic_dates(text), None)


# Words a date stamp may carry besides the date itself ("الأربعاء 15:59 15/10/2025",
# "نشر في: 19 فبراير 2018 - 14:03 بتوقيت غرينتش", "آخر تحديث 2 مارس 2017"), folded.
_STAMP_PHRASES = re.compile(
    r"نشر\s+(?:في|بتاريخ)|تاريخ\s+النشر|اخر\s+تحديث|تم\s+النشر|تم\s+التحديث"
    # "بتوقيت X" / "حسب توقيت X" (X a place or any one word), "توقيت X" only with X a place: in a
    # sentence "توقيت" is "timing" ("تحدد توقيت الانتخابات"), and "التوقيت" is not a zone at all
    rf"|(?<![{_L}])(?:(?:ب|حسب\s+)توقيت\s+(?:(?:{_PLACES})(?![{_L}])|[^\s\d]+)|توقيت\s+(?:{_PLACES})(?![{_L}]))"
)
_STAMP_WORDS = frozenset(_fold(w) for w in [*(
    "يوم الأحد الاحد الإثنين الاثنين الثلاثاء الأربعاء الاربعاء الخميس الجمعة السبت الساعة الساعه "
    "تاريخ بتاريخ التاريخ نشر تحديث محدث منذ ص م صباحا مساء ظهرا GMT UTC AM PM am pm").split(), *CLOCK_ZONE_NAMES])
_LETTER_RUN = re.compile(rf"[{_L}A-Za-z]+")


def undated_words(line: str) -> list[str] | None:
    """The words of ``line`` besides its date: those that are not the date's month, a weekday, a
    clock or a stamp's label ("نشر في", "آخر تحديث", "بتوقيت غرينتش"); ``None`` if ``line`` shows
    no date. An empty list means the line is a date stamp and nothing else."""
    if parse_arabic_date(line) is None:
        return None
    s = _STAMP_PHRASES.sub(" ", re.sub(_MONTH, " ", _fold(line)))
    return [w for w in _LETTER_RUN.findall(s) if w not in _STAMP_WORDS]


# ---------------------------------------------------------------------------------------
# Hijri dates
# ---------------------------------------------------------------------------------------
# Month names of the Islamic calendar, folded as above. Both readings of months 4 and 6
# (الآخر / الثاني, الآخرة / الثانية) and the ذو / ذي forms are listed.
HIJRI_MONTHS: dict[int, tuple[str, ...]] = {
    1: ("محرم", "المحرم"),
    2: ("صفر",),
    3: ("ربيع الاول", "ربيع اول"),
    4: ("ربيع الاخر", "ربيع الثاني", "ربيع ثاني", "ربيع اخر"),
    5: ("جمادي الاولي", "جمادي الاول", "جمادي اولي"),
    6: ("جمادي الاخره", "جمادي الاخر", "جمادي الثانيه", "جمادي الثاني", "جمادي اخره"),
    7: ("رجب",),
    8: ("شعبان",),
    9: ("رمضان",),
    10: ("شوال",),
    11: ("ذو القعده", "ذي القعده"),
    12: ("ذو الحجه", "ذي الحجه"),
}
_HIJRI_BY_NAME = {name: num for num, names in HIJRI_MONTHS.items() for name in names}
_HIJRI_RE = re.compile(
    rf"(?<![\d{_L}])(?P<d>[0-3]?\d)\s+(?P<m>"
    + _alternation(_HIJRI_BY_NAME)
    + rf")(?![{_L}])\s*[،,]?\s*(?P<y>1[34]\d\d)(?!\d)\s*(?:ه(?:ـ|\b)|هجري|للهجره)?"
)


def parse_hijri_date(text: str) -> datetime | None:
    """The first Hijri date in ``text`` ("5 جمادى الأولى 1444 هـ"), converted to the Gregorian
    day (Umm al-Qura calendar, via ``hijridate``), as midnight UTC; ``None`` if there is none.

    Umm al-Qura is the official calendar of Saudi Arabia; countries that start months on a
    sighting of the moon may be a day apart from it. Years outside the converter's range
    (1343-1500 AH, 1924-2077 CE) give ``None``.
    """
    if not text or not isinstance(text, str):
        return None
    from hijridate import Hijri  # imported here: only pages that spell a Hijri date need it

    for m in _HIJRI_RE.finditer(_fold(text)):
        try:
            g = Hijri(int(m.group("y")), _HIJRI_BY_NAME[" ".join(m.group("m").split())], int(m.group("d"))).to_gregorian()
        except (ValueError, OverflowError):
            continue
        return datetime(g.year, g.month, g.day, tzinfo=UTC)
    return None


# ---------------------------------------------------------------------------------------
# Dates in URLs
# ---------------------------------------------------------------------------------------
# /2024/05/12/, /2020/8/24/, -2020-06-03-, /2024-05-12/ in the path: year, month, day with
# one separator; or a path segment opening with yyyymmdd followed by an id (202003171044…).
_URL_YMD = re.compile(r"(?<![\d])((?:19|20)\d{2})([/_.-])(0?[1-9]|1[0-2])\2(0?[1-9]|[12]\d|3[01])(?!\d)")
_URL_COMPACT = re.compile(r"/((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?:\d{6,})?(?=[/\-_.]|$)")


def date_from_url(url: str) -> datetime | None:
    """The publication day written in an article URL's path, as midnight UTC, or ``None``.

    Only the path is read (never the host or the query string, where dates are often
    search or archive parameters).
    """
    if not url or not isinstance(url, str):
        return None
    from urllib.parse import unquote, urlsplit

    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return None
    for rx in (_URL_YMD, _URL_COMPACT):
        for m in rx.finditer(path):
            y, mo, d = int(m.group(1)), int(m.group(3) if rx is _URL_YMD else m.group(2)), \
                int(m.group(4) if rx is _URL_YMD else m.group(3))
            if d <= calendar.monthrange(y, mo)[1]:
                return datetime(y, mo, d, tzinfo=UTC)
    return None


# ---------------------------------------------------------------------------------------
# Choosing among candidates
# ---------------------------------------------------------------------------------------
def as_utc(dt: datetime | date) -> datetime:
    """``dt`` as an aware UTC datetime: a naive time (or a date) is taken to be UTC."""
    if not isinstance(dt, datetime):
        dt = datetime(dt.year, dt.month, dt.day)
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def plausible(
    dt: datetime | None,
    *,
    now: datetime,
    earliest: datetime = EARLIEST,
    max_future: timedelta = timedelta(days=1),
) -> bool:
    """True when ``dt`` lies between ``earliest`` and ``now + max_future`` (naive = UTC)."""
    if dt is None or not isinstance(dt, date):
        return False
    try:
        return as_utc(earliest) <= as_utc(dt) <= as_utc(now) + max_future
    except (OverflowError, ValueError):
        return False


def _new_year_midnight(dt: datetime) -> bool:
    return (dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond) == (1, 1, 0, 0, 0, 0)


def choose_published(
    candidates: Iterable[tuple[str, datetime | None | Callable[[], datetime | None]]], *, now: datetime
) -> tuple[datetime | None, str | None]:
    """First plausible candidate (in UTC) and its source name, or ``(None, None)``.

    ``candidates`` are ``(source, datetime)`` pairs in priority order; a value may also be a
    function returning one, called only when every candidate before it has been ruled out
    (reading the visible text for a date is the costly part of extraction, and needless when
    the feed gave a date). A ``"metadata"`` value of exactly 1 January 00:00 is what
    trafilatura reports when all it could read was the year (typical when the page spells the
    month in Arabic); such a value yields to any later plausible candidate from the same year,
    and is kept only otherwise.
    """
    waiting: tuple[datetime, str] | None = None  # a year-only metadata value
    for name, value in candidates:
        dt = value() if callable(value) else value
        if not plausible(dt, now=now):
            continue
        dt = as_utc(dt)
        if waiting is None:
            if name == "metadata" and _new_year_midnight(dt):
                waiting = (dt, name)
                continue
            return dt, name
        if dt.year == waiting[0].year and not (name == "metadata" and _new_year_midnight(dt)):
            return dt, name
    return waiting if waiting is not None else (None, None)


_DIGITS_ONLY = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}


# Zone names Arabic feeds and meta tags write after an RFC 822 time, read as meant in the region:
# AST is Arabia Standard Time (Riyadh, Baghdad, Doha, Kuwait), not Atlantic time.
ZONE_OFFSETS = {
    "AST": "+0300", "GST": "+0400", "EET": "+0200", "EEST": "+0300", "MSK": "+0300", "TRT": "+0300",
    "IRST": "+0330", "IRDT": "+0430", "EAT": "+0300", "CAT": "+0200", "SAST": "+0200", "WAT": "+0100",
    "CET": "+0100", "CEST": "+0200", "WET": "+0000", "WEST": "+0100", "BST": "+0100", "PKT": "+0500",
    "KSA": "+0300",
}
_NAMED_ZONE_RE = re.compile(r"(?<=\d)\s*\(?([A-Z]{3,4})\)?\s*$")
_GMT_OFFSET_RE = re.compile(r"(?<=\d)\s*\(?(?:GMT|UTC)\s*([+-]\d{1,2}(?::?\d{2})?)\)?\s*$")


def written_zone(value: str) -> str | None:
    """``value`` with its trailing zone, if it is one of :data:`ZONE_OFFSETS` or written
    ``GMT+3`` / ``UTC+03:00``, turned into an RFC 822 offset (``+0300``); ``None`` if it has no
    such zone."""
    m = _GMT_OFFSET_RE.search(value)
    if m:
        delta = _signed_offset(m.group(1))
        if delta is None:
            return None
        minutes = round(abs(delta.total_seconds()) / 60)
        return f"{value[:m.start()]} {m.group(1)[0]}{minutes // 60:02d}{minutes % 60:02d}"
    m = _NAMED_ZONE_RE.search(value)
    if m and m.group(1) in ZONE_OFFSETS:
        return f"{value[:m.start()]} {ZONE_OFFSETS[m.group(1)]}"
    return None


def parse_feed_date(value) -> datetime | None:
    """Aware UTC datetime from a feedparser ``*_parsed`` struct_time or a date string.

    Strings may be ISO 8601 (``2025-10-15T10:30:00+03:00``, ``Z``, date only), RFC 822
    (``Wed, 15 Oct 2025 10:30:00 +0300``) or, as some Arabic feeds do, Arabic text handled
    by :func:`parse_arabic_date`. Returns ``None`` on anything unusable; never raises.
    """
    try:
        if value is None:
            return None
        if isinstance(value, date):
            return as_utc(value)
        if isinstance(value, time.struct_time) or (
            isinstance(value, tuple) and len(value) >= 6 and all(isinstance(v, int) for v in value[:6])
        ):
            y, mo, d, h, mi, s = (int(v) for v in value[:6])
            return datetime(y, mo, d, h, mi, min(s, 59), tzinfo=UTC)
        if not isinstance(value, str):
            return None
        s = unicodedata.normalize("NFKC", value).translate(_DIGITS_ONLY).strip()
        if not s:
            return None
        if re.match(r"\d{4}-\d{2}-\d{2}", s):
            try:
                return as_utc(datetime.fromisoformat(s))
            except ValueError:
                pass
        try:
            dt = email.utils.parsedate_to_datetime(written_zone(s) or s)
        except (TypeError, ValueError, IndexError, OverflowError):
            dt = None
        if dt is not None:
            return as_utc(dt)
        return parse_arabic_date(value)
    except Exception:  # noqa: BLE001 - feed input is arbitrary; the contract is "never raises"
        return None
