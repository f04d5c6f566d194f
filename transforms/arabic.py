"""Arabic text normalization for matching (dedup, classification).

The stored ``body`` is always kept as published; these folds are applied only to build
matching keys. Every fold is listed in :data:`FOLD_TABLE` so the documentation and the code
cannot drift apart (``docs/normalization.md`` is checked against it by a test).

``normalize`` is idempotent: ``normalize(normalize(s)) == normalize(s)``.
"""
from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

# (what, from, to) — the order matters only for documentation; folds are single-character.
FOLD_TABLE: list[tuple[str, str, str]] = [
    ("alef with hamza above", "\u0623", "\u0627"),
    ("alef with hamza below", "\u0625", "\u0627"),
    ("alef with madda", "\u0622", "\u0627"),
    ("alef wasla", "\u0671", "\u0627"),
    ("alef maqsura", "\u0649", "\u064a"),
    ("ta marbuta", "\u0629", "\u0647"),
    ("waw with hamza", "\u0624", "\u0648"),
    ("ya with hamza", "\u0626", "\u064a"),
    ("Persian/Urdu yeh (Farsi yeh) in Arabic text", "\u06cc", "\u064a"),
    ("Persian keheh", "\u06a9", "\u0643"),
    ("Arabic comma", "\u060c", ","),
    ("Arabic semicolon", "\u061b", ";"),
    ("Arabic question mark", "\u061f", "?"),
    ("Arabic percent sign", "\u066a", "%"),
    ("Arabic decimal separator", "\u066b", "."),
    ("Arabic thousands separator", "\u066c", ","),
]
# Arabic-Indic (U+0660..0669) and Extended/Persian (U+06F0..06F9) digits to ASCII.
DIGITS = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}

# Removed outright: harakat (fathatan..sukun), superscript alef, Quranic marks, tatweel,
# zero-width and bidi controls, BOM, soft hyphen.
_REMOVE = (
    [chr(c) for c in range(0x064B, 0x0660)]  # harakat, shadda, sukun, maddah/hamza marks
    + ["\u0670"]  # superscript alef
    + [chr(c) for c in range(0x06D6, 0x06EE)]  # Quranic annotation marks
    + ["\u0640"]  # tatweel
    + ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad"]
    + [chr(c) for c in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO
    + [chr(c) for c in range(0x2066, 0x206A)]  # LRI RLI FSI PDI
    + ["\u061c"]  # Arabic letter mark
)
REMOVED_CHARS = "".join(_REMOVE)

_TRANSLATE = {ord(a): b for _, a, b in FOLD_TABLE} | DIGITS | {ord(c): None for c in _REMOVE}


class CharMap:
    """``str.translate`` for a table of single characters (each mapped to one character or
    removed), done on code points with numpy for long strings: ``str.translate`` looks every
    character of Arabic text up in a dict (about 90 ns each); the array lookup costs a sixth of
    that on a news article. Short strings keep ``str.translate``. The results are identical."""

    _GONE = np.uint32(0xFFFFFFFF)
    _MIN_LEN = 200  # below this, str.translate is the faster of the two

    def __init__(self, table: dict[int, str | None]):
        self.table = table
        self._lut = np.arange(0x10000, dtype=np.uint32)
        for cp, to in table.items():
            if cp > 0xFFFF or (to is not None and len(to) != 1):
                raise ValueError(f"CharMap maps single BMP characters only, not {cp:#x} → {to!r}")
            self._lut[cp] = self._GONE if to is None else ord(to)

    def __call__(self, text: str) -> str:
        if len(text) < self._MIN_LEN:
            return text.translate(self.table)
        try:
            cps = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        except UnicodeEncodeError:  # a lone surrogate: no UTF-32 form
            return text.translate(self.table)
        # code points above the BMP (emoji, rare CJK) are not in the table and pass unchanged
        out = np.where(cps <= 0xFFFF, self._lut[np.minimum(cps, 0xFFFF)], cps)
        out = out[out != self._GONE]
        return out.astype("<u4").tobytes().decode("utf-32-le")


_fold = CharMap(_TRANSLATE)
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Fold ``text`` into its matching form (see module docstring)."""
    if not text:
        return ""
    if len(text) <= _CACHED_LEN:  # titles, names, lines: the same ones come back within a page
        return _normalize_short(text)
    return _normalize(text)


def _normalize(text: str) -> str:
    # NFKC maps presentation forms (U+FB50..FEFF) to base letters. Marks removed afterwards,
    # since NFKC can produce them from ligatures.
    s = _fold(unicodedata.normalize("NFKC", text))
    # A second pass catches characters NFKC produced from compatibility ligatures (the table's
    # outputs are never its inputs, so a string NFKC leaves alone needs no second pass).
    if not unicodedata.is_normalized("NFKC", s):
        s = _fold(unicodedata.normalize("NFKC", s))
    return _SPACE.sub(" ", s).strip().lower()


# A pure function of its argument: caching changes no result, only the time.
_CACHED_LEN = 300
_normalize_short = functools.lru_cache(maxsize=4096)(_normalize)


def tokens(text: str, *, normalized: bool = False) -> list[str]:
    """Word tokens (letters and digits) of ``text``, normalized unless already so."""
    return _TOKEN.findall(text if normalized else normalize(text))
