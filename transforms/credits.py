"""Credits and datelines of Arabic news bodies.

Wire copy carries its provenance in the text: a leading dateline ("دمشق، سوريا (CNN) --",
"بوابة اوكرانيا – كييف – 29 تشرين الثاني 2022 –") and credit lines ("فرانس24/ أ ف ب",
"(أ ف ب)", "رويترز", "المصدر: موزاييك أف.أم"). They are facts about the article, not part of
its prose: :func:`split_credits` moves them out of the body into a ``dateline`` string and a
``credit`` list, and leaves every real sentence where it was.

What is removed, and only this:

* a line that is nothing but a credit: agency names or initials joined by ``/ - ، و``,
  optionally in brackets, or ``المصدر:`` / ``المصدر`` followed by a short name;
* a credit in brackets closing the last paragraph ("… في بيان. (رويترز)"), unless the sentence
  names it ("… بحسب ما نقلت وكالة (رويترز).");
* a dateline opening the first paragraph: a place (and/or outlet, date) of a few short
  segments ended by a dash, or anything short before a bracketed agency and a dash
  ("واشنطن (رويترز) -"; not when that is a clause, "أكد الوزير (رويترز) -"), a place and an
  agency between dashes ("دمشق-سانا-"), or the site's own name before a dash.

Credits are kept as written (brackets, the ``المصدر:`` label and surrounding punctuation
removed), split into one item per agency: ``"فرانس24/ أ ف ب"`` → ``("فرانس24", "أ ف ب")``.
Everything here is pure.
"""
from __future__ import annotations

import re

from akhbar.transforms.arabic import tokens
from akhbar.transforms.dates import parse_arabic_date

__all__ = ["AGENCIES", "credit_line", "split_credits", "split_dateline"]

# Agencies and wire credits seen in Arabic news, written plainly; matching tolerates hamza
# variants, ة/ه, ى/ي, dots or no spaces between initials, and a "وكالة" in front.
AGENCIES = (
    "أ ف ب", "ا ف ب", "فرانس برس", "فرانس 24", "فرانس24", "رويترز", "أسوشيتد برس", "اسوشيتد برس",
    "أسوشييتد برس", "أ ب", "د ب أ", "الأناضول", "الاناضول", "وام", "واس", "قنا", "كونا", "بترا", "سانا",
    "أ ش أ", "واج", "ومع", "وات", "واع", "بنا", "سبأ", "العمانية", "الأنباء العمانية",
    "إرنا", "ارنا", "شينخوا", "سبوتنيك", "تاس", "نوفوستي", "ريا نوفوستي", "يونهاب", "كيودو", "إفي", "أكي",
    "وكالات", "وكالة الأنباء", "مواقع", "سكاي نيوز عربية", "العربية.نت", "العربية نت", "الجزيرة", "الجزيرة نت",
    "بي بي سي", "يورونيوز", "مونت كارلو الدولية", "الشرق الأوسط", "CNN", "BBC", "AFP", "Reuters", "AP", "dpa",
)

_VARIANTS = {"ا": "[اأإآ]", "أ": "[اأإآ]", "إ": "[اأإآ]", "آ": "[اأإآ]", "ة": "[ةه]", "ه": "[ةه]", "ى": "[ىي]",
             "ي": "[ىي]"}


def _flex(name: str) -> str:
    words = name.split()
    if all(len(w) == 1 for w in words):  # initials: "أ ف ب", "أ.ف.ب", "أفب"
        return r"[.\s]*".join(_VARIANTS.get(w, re.escape(w)) for w in words) + r"\.?"
    out = []
    for w in words:
        out.append("".join(_VARIANTS.get(c, re.escape(c)) for c in w))
    return r"\s*".join(out)


_L = "\u0621-\u064a\u0660-\u0669\u066e-\u06d3A-Za-z0-9"  # word characters for edges
# The word edges and the optional "وكالة" are written once around the alternation, not in each
# of its branches: a pattern a quarter the size that matches the same strings (and gave identical
# results on 30,161 ANT articles), whose three regexes below compile in 0.06 s instead of 0.24 s
# at every process start.
_AGENCY = (rf"(?<![{_L}])(?:وكال[ةه]\s+)?(?:"
           + "|".join(_flex(a) for a in sorted(AGENCIES, key=len, reverse=True)) + rf")(?![{_L}])")
_JOIN = r"\s*(?:[/|,،+\-–—]|\sو\s)\s*"
# A whole line of agencies: "فرانس24/ أ ف ب", "(أ ف ب)", "رويترز - أ ف ب", "(CNN)".
_AGENCY_LINE = re.compile(rf"^[\s(\[«\"\-–—]*(?:{_AGENCY})(?:{_JOIN}(?:{_AGENCY}))*[\s)\]»\".:،,-]*$", re.I)
# "المصدر: موزاييك أف.أم", "المصدر : وكالات", "(المصدر: رويترز)", "مصدر الخبر: …"
_SOURCE_LINE = re.compile(r"^[\s(\[]*(?:ال)?مصدر(?:\s+الخبر)?\s*[:：\-–]\s*(?P<name>[^\n!؟?]{2,60}?)[\s)\].]*$")
# A bracketed credit closing the last paragraph.
_TRAILING = re.compile(rf"\s*[(\[]\s*(?P<c>(?:{_AGENCY})(?:{_JOIN}(?:{_AGENCY}))*)\s*[)\]]\s*\.?\s*$", re.I)
# "دمشق، سوريا (CNN) --", "واشنطن (رويترز) -", "(CNN)--"
_AGENCY_DATELINE = re.compile(
    rf"^(?P<place>[^()\n]{{0,60}}?)\s*[(\[]\s*(?P<c>(?:{_AGENCY})(?:{_JOIN}(?:{_AGENCY}))*)\s*[)\]]\s*[-–—]{{1,2}}\s*", re.I)
# "دمشق-سانا-", "عمان - بترا -": a place and an agency between dashes, without brackets
_DASHED_AGENCY_DATELINE = re.compile(
    rf"^(?P<place>[^()\-–—\n.!؟?:]{{1,40}}?)\s*[-–—]\s*(?P<c>{_AGENCY})\s*[-–—]{{1,2}}\s*", re.I)
# Words after which a bracketed agency is part of the sentence ("نقلت وكالة (رويترز)"), not its credit.
_GOVERNING = frozenset(tokens(
    "وكالة وكاله قناة قناه صحيفة صحيفه موقع شبكة شبكه تلفزيون إذاعة اذاعة مراسل عن نقلت نقلا نقلاً "
    "حسب بحسب وفق وفقا وفقاً أوردته أوردت اوردت ذكرته ذكرت أفادت افادت لوكالة لقناة لصحيفة لموقع"))
# Segments ended by a dash at the start of the first paragraph: "بوابة اوكرانيا – كييف – 29 تشرين الثاني 2022 –"
_DASH_PREFIX = re.compile(r"^(?P<pre>(?:[^\-–—\n.!؟?:]{1,40}?\s+[-–—]\s+){1,4})")
# Words of running prose (normalized) that a place/outlet/date dateline never contains.
_PROSE_WORDS = frozenset(tokens(
    "قال وقال قالت وقالت في من على الى إلى عن ان أن إن التي الذي الذين هذا هذه ذلك كان كانت "
    "لم لن قد هو هي مع بعد قبل حيث كما اكد أكد اعلن أعلن وأضاف اضاف او أو ثم"))
# What follows the dashes when they string a headline's kicker together, "ترامب - بايدن - هاريس: …":
# one more name of at most three words, then a colon.
_KICKER_END = re.compile(r"^[^\s:.!؟?،,]+(?:\s+[^\s:.!؟?،,]+){0,2}\s*:")
_SPLIT = re.compile(r"\s*(?:/|\||،|,|\s-\s|\s–\s|\s—\s|\s\+\s)\s*")


def _items(text: str) -> list[str]:
    parts = [p.strip(" \t()[]«»\"'.:،,-–—") for p in _SPLIT.split(text)]
    return [p for p in parts if p]


def credit_line(line: str) -> list[str] | None:
    """The credits of ``line`` if the whole line is a credit, else ``None``."""
    s = line.strip()
    if not s or len(s) > 80:
        return None
    if _AGENCY_LINE.match(s):
        return _items(s)
    m = _SOURCE_LINE.match(s)
    if m and len(m.group("name").split()) <= 6:
        return _items(m.group("name"))
    return None


def split_dateline(paragraph: str, site_names: tuple[str, ...] = ()) -> tuple[str | None, str, list[str]]:
    """``(dateline, rest, credits)`` of a first paragraph; ``(None, paragraph, [])`` if it has none.

    A dateline is removed only when real text follows it (at least four words).
    """
    for rx in (_AGENCY_DATELINE, _DASHED_AGENCY_DATELINE):
        m = rx.match(paragraph)
        # a place (or nothing) before the agency: "أكد وزير الخارجية (رويترز) -" is a sentence
        if m and len(m.group("place").split()) <= 8 and not set(tokens(m.group("place"))) & _PROSE_WORDS:
            rest = paragraph[m.end():]
            if len(rest.split()) >= 4:
                return paragraph[:m.end()].strip(), rest, _items(m.group("c"))
    m = _DASH_PREFIX.match(paragraph)
    if m:
        pre, rest = m.group("pre"), paragraph[m.end():]
        segs = [s for s in re.split(r"\s+[-–—](?:\s+|$)", pre.strip()) if s.strip(" -–—")]
        prose = any(t in _PROSE_WORDS for s in segs for t in tokens(s))
        words = len(pre.split())
        short = all(len(s.split()) <= 4 for s in segs)
        named = {" ".join(tokens(n)) for n in site_names if n}
        is_site = len(segs) == 1 and " ".join(tokens(segs[0])) in named
        dated = parse_arabic_date(pre) is not None
        kicker = _KICKER_END.match(rest) is not None and not dated
        if (len(rest.split()) >= 4 and short and not prose and words <= 12 and not kicker
                and (len(segs) >= 2 or is_site or dated)):
            credits = [s.strip() for s in segs if _AGENCY_LINE.match(s.strip())]
            return pre.strip().rstrip("-–— ").strip(), rest, credits
    return None, paragraph, []


def split_credits(body: str, site_names: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...], str | None]:
    """``(body, credits, dateline)``: credit lines and a leading dateline moved out of ``body``.

    ``site_names`` are names the page gives itself (``og:site_name``, a header line); a first
    paragraph starting with one of them and a dash has it as its dateline.
    """
    lines = [ln for ln in body.split("\n") if ln.strip()]
    credits: list[str] = []
    kept: list[str] = []
    for line in lines:
        c = credit_line(line)
        if c is not None:
            credits += c
        else:
            kept.append(line)
    dateline = None
    if kept:
        dateline, first, dl_credits = split_dateline(kept[0], site_names)
        kept[0] = first
        credits = dl_credits + credits
    if kept:
        m = _TRAILING.search(kept[-1])
        before = tokens(kept[-1][:m.start()]) if m else []
        if m and len(before) >= 4 and before[-1] not in _GOVERNING:
            credits += _items(m.group("c"))
            kept[-1] = kept[-1][:m.start()].rstrip()
    seen: set[str] = set()
    unique = tuple(c for c in credits if not (c in seen or seen.add(c)))
    return "\n".join(kept), unique, dateline
