"""Language of an article body: ar, fa, ur, en, fr, or und.

The pipeline only needs to tell Arabic from the other languages its sources publish in,
so this is a small script-and-marker classifier rather than a statistical model:

1. Count Arabic-script letters against Latin letters; the larger side picks the branch.
2. Arabic script: every token may carry markers of Arabic (the article ``ال``, ``ة``,
   ``ى``, frequent particles), Persian (پ چ ژ گ, zero-width non-joiner, frequent words such
   as است/این/که/را/می) or Urdu (ٹ ڈ ڑ ں ے ھ ہ, frequent words such as کے/کی/ہے/میں).
   The decision uses the *share of tokens* carrying each marker, so a single Persian or
   Urdu name quoted in an Arabic article does not flip it. The Persian yeh and keheh are
   deliberately not treated as Persian evidence by themselves: Arabic-language outlets in
   Iran routinely type Arabic with a Persian keyboard.
3. Latin script: English against French by their frequent function words.

``declared`` (the page's ``lang`` attribute) only breaks ties when the text is too short
to decide.
"""
from __future__ import annotations

import re
import unicodedata

from akhbar.transforms.arabic import CharMap

__all__ = ["LANGUAGES", "detect_language", "normalize_lang_tag"]

LANGUAGES = ("ar", "fa", "ur", "en", "fr", "und")

MIN_LETTERS = 20  # below this the text alone is "too short"
_MAX_CHARS = 60_000  # rates are stable long before this; keeps very long bodies cheap

# Arabic-script letters (after NFKC, which maps presentation forms to base letters).
_AR_LETTERS = "\u0620-\u063f\u0641-\u064a\u066e\u066f\u0671-\u06d3\u06d5\u06ee\u06ef\u06fa-\u06ff\u0750-\u077f\u08a0-\u08c9"
# A token may contain zero-width non-joiners (Persian "می‌شود", "کشورها‌ی").
_AR_TOKEN_RE = re.compile(f"[{_AR_LETTERS}]+(?:\u200c[{_AR_LETTERS}]+)*")
_LATIN_TOKEN_RE = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+(?:['\u2019][A-Za-z\u00c0-\u024f]+)?")
_LATIN_LETTER_RE = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")

# Dropped before analysis: harakat, superscript alef, Quranic marks, tatweel, and
# invisible controls other than ZWNJ (which is evidence for Persian).
_STRIP = {c: None for c in range(0x064B, 0x0660)} | {c: None for c in range(0x06D6, 0x06EE)}
_STRIP |= {c: None for c in (0x0670, 0x0640, 0x200B, 0x200D, 0x200E, 0x200F, 0x061C, 0xFEFF, 0x00AD)}
_strip = CharMap(_STRIP)

# Word lookups compare a folded spelling in which Arabic yeh/alef maqsura/kaf and their
# Persian counterparts coincide, since either may be typed in either language.
_WORD_FOLD = str.maketrans({"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9"})


def _words(s: str) -> frozenset[str]:
    return frozenset(w.translate(_WORD_FOLD) for w in s.split())


# Frequent Arabic words that Persian and Urdu do not share (بعد, قبل, بين, حتى, ضد, او ... are
# left out because Persian uses them too).
_AR_WORDS = _words(
    "في من على إلى الى عن أن إن ان التي الذي الذين هذا هذه ذلك تلك كان كانت قال وقال "
    "وفي ومن وعلى مع لم لن قد كما أو ثم هو هي عند خلال منذ إنه أنه إلا لكن ليس عليه "
    "يوم وأن وأضاف أمس فيما بينما حيث"
)
_FA_WORDS = _words(
    "است این که را از می نمی های ها برای شده شد شود کرده کند کنند بود نیز یک آن خود "
    "باید اند در با تا وی کشور همچنین آنها اینکه شده‌است"
)
_UR_WORDS = _words(
    "کے کی ہے میں نے کو سے ہیں اور کا پر یہ وہ تھا تھی تھے گیا کہا بھی ہو کر"
)
_FA_LETTERS = frozenset("\u067e\u0686\u0698\u06af")  # پ چ ژ گ
_UR_LETTERS = frozenset("\u0679\u0688\u0691\u06ba\u06bb\u06d2\u06d3\u06be\u06c1\u06c2\u06c3")  # ٹ ڈ ڑ ں ے ھ ہ ...
_AR_ONLY_LETTERS = frozenset("\u0629\u0649")  # ة ى

_EN_WORDS = frozenset(
    "the and of to is that for with was said it by from are has have be as at this which "
    "will were an his their not been would".split()
)
# French words that Spanish/Italian/Portuguese do not share (so no de, la, en, que, un).
_FR_WORDS = frozenset(
    "le les des et du une est dans pour qui sur au aux avec pas ce il elle sont été cette "
    "ont mais ou où leur nous vous ne à ses selon après".split()
)

# Shares of Arabic-script tokens needed to call Urdu / Persian.
_UR_MIN_SHARE = 0.15
_FA_MIN_SHARE = 0.12
_LATIN_MIN_SHARE = 0.05


def normalize_lang_tag(tag: str | None) -> str | None:
    """Primary language subtag of a BCP-47-ish tag, lower case: ``"ar-EG"`` → ``"ar"``.

    Three-letter codes of the languages this module returns are mapped to their two-letter
    form (``"ara"`` → ``"ar"``, ``"per"``/``"fas"`` → ``"fa"``). Empty or malformed tags give
    ``None``.
    """
    if not tag or not isinstance(tag, str):
        return None
    primary = re.split(r"[-_\s]", tag.strip().lower(), maxsplit=1)[0]
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        return None
    return _ISO3.get(primary, primary)


_ISO3 = {
    "ara": "ar", "arb": "ar", "fas": "fa", "per": "fa", "pes": "fa", "prs": "fa",
    "urd": "ur", "eng": "en", "fra": "fr", "fre": "fr",
}


def _word_marks(tok: str) -> tuple[bool, bool, bool]:
    """(Urdu, Persian, Arabic) evidence of one Arabic-script word; Urdu evidence wins over Persian."""
    letters = set(tok)
    w = tok.translate(_WORD_FOLD)
    is_ur = bool(letters & _UR_LETTERS) or w in _UR_WORDS
    is_fa = not is_ur and bool((letters & _FA_LETTERS) or "\u200c" in tok or w in _FA_WORDS)
    is_ar = bool((letters & _AR_ONLY_LETTERS) or (tok.startswith("\u0627\u0644") and len(tok) >= 4)
                 or w in _AR_WORDS)
    return is_ur, is_fa, is_ar


# A word's marks packed in one int, (Urdu, Persian, Arabic) in fields of 20 bits, so that the marks
# of a text are one sum over its words (a text has fewer than 2**20 words: see _MAX_CHARS). The
# marks are a pure function of the word: the cache, emptied when it grows past its size, only
# saves time (0.21 → 0.05 ms an article against a loop over a Counter with a cached function).
_FIELD = 20
_MASK = (1 << _FIELD) - 1
_MARK_CODES: dict[str, int] = {}
_MARK_CACHE_SIZE = 65536


def _mark_code(tok: str) -> int:
    is_ur, is_fa, is_ar = _word_marks(tok)
    return is_ur | is_fa << _FIELD | is_ar << 2 * _FIELD


def _arabic_script_language(tokens: list[str]) -> tuple[str, bool]:
    """(language, decisive) for Arabic-script tokens."""
    n = len(tokens)
    if n == 0:
        return "ar", False
    codes = _MARK_CODES
    if len(codes) > _MARK_CACHE_SIZE:
        codes.clear()
    found = [codes.get(tok) for tok in tokens]
    if None in found:  # a local map of the text's words: another thread may empty the cache meanwhile
        local = {}
        for tok in set(tokens):
            code = codes.get(tok)
            if code is None:
                code = codes[tok] = _mark_code(tok)
            local[tok] = code
        found = [local[tok] for tok in tokens]
    total = sum(found)
    ur, fa, ar = total & _MASK, total >> _FIELD & _MASK, total >> 2 * _FIELD
    ar_s, fa_s, ur_s = ar / n, fa / n, ur / n
    # At least two marked tokens as well as the share: one Persian name in a three-word
    # Arabic headline is not Persian.
    if ur >= 2 and ur_s >= _UR_MIN_SHARE and ur_s > ar_s:
        return "ur", True
    if fa >= 2 and fa_s >= _FA_MIN_SHARE and fa_s > ar_s:
        return "fa", True
    return "ar", ar > 0 and ar_s >= max(fa_s, ur_s)


def _latin_language(tokens: list[str]) -> tuple[str, bool]:
    n = len(tokens)
    if n == 0:
        return "und", False
    low = [t.lower() for t in tokens]
    en = sum(t in _EN_WORDS for t in low)
    fr = sum(t in _FR_WORDS for t in low)
    # French elisions: l'état, d'un, qu'il ...
    fr += sum(1 for t in low if re.match(r"(?:l|d|qu|n|s|j|c)['\u2019]", t))
    if en > fr and en / n >= _LATIN_MIN_SHARE:
        return "en", True
    if fr > en and fr / n >= _LATIN_MIN_SHARE:
        return "fr", True
    return "und", False


def detect_language(text: str, declared: str | None = None) -> str:
    """ISO 639-1 code of ``text``: ``ar``, ``fa``, ``ur``, ``en``, ``fr`` or ``und``.

    ``declared`` is used only when the text has fewer than :data:`MIN_LETTERS` letters (or
    when the text alone cannot decide), and only if it names a language of the winning
    script. Text without any letters is ``und`` whatever is declared.
    """
    if not text or not isinstance(text, str):
        return "und"
    s = _strip(unicodedata.normalize("NFKC", text[:_MAX_CHARS]))
    # every Arabic-script letter is in exactly one token, which is letters and ZWNJs only
    ar_tokens = _AR_TOKEN_RE.findall(s)
    letters = "".join(ar_tokens)
    n_ar = len(letters) - letters.count("\u200c")
    n_lat = len(_LATIN_LETTER_RE.findall(s))
    if n_ar == 0 and n_lat == 0:
        return "und"
    decl = normalize_lang_tag(declared)
    if n_ar >= n_lat:
        lang, decisive = _arabic_script_language(ar_tokens)
        if decl in ("ar", "fa", "ur") and (n_ar < MIN_LETTERS or not decisive):
            return decl
        return lang
    if n_lat < MIN_LETTERS:
        return decl if decl in ("en", "fr") else "und"
    lang, decisive = _latin_language(_LATIN_TOKEN_RE.findall(s))
    if not decisive and decl in ("en", "fr"):
        return decl
    return lang
