"""Lexicon-based topic classifier for NATO and Ukraine news in Arabic.

The lexicon (``data/lexicon.yaml``, documented in the file itself) lists, per topic, surface
terms with a weight, look-alike patterns that cancel (or discount) a match, and an optional
"dampen" vocabulary for stories where the topic is only the setting. Matching is done on normalized
whole tokens (:mod:`akhbar.transforms.arabic`), with Arabic proclitics stripped from the text
tokens and, for demonyms, inflectional suffixes expanded on the lexicon side. Nothing is compiled
per call: :func:`load_lexicon` builds dictionaries once, and :func:`classify` does set look-ups.

Scoring, per topic::

    e(segment)  = min(paragraph_cap, strongest match + repeat_weight * the other matches' weights)
    e(segment) *= support_boost       if a support word of the topic occurs in that segment
    body        = sum over body paragraphs of e(p) * (lead_weight if p is in the lead else body_weight)
    coverage    = paragraphs with a match / paragraphs
    g           = coverage_floor + (1 - coverage_floor) * min(1, coverage / coverage_full)
    evidence    = title_weight * e(title) + g * body
    evidence   *= dampen.factor   if the dampen vocabulary is at least as frequent as the topic
    score       = 1 - exp(-k * evidence)                                  (always in [0, 1))

so a single background mention deep in a long story (low coverage, body weight) stays low, while a
title hit or a topic running through the paragraphs scores high. A topic is assigned when its
score reaches the threshold (per topic in the lexicon, 0.5 by default) — and never without at least
one match of its terms: an article that names neither NATO nor Ukraine gets no topic and scores 0.

Matching (:func:`match_lexicon`) and scoring (:func:`score_matches`) are separate so that tuning
(:mod:`akhbar.transforms.evaluate`) can rescore the same matches under many settings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

import yaml

from akhbar.transforms.arabic import normalize, tokens

TOPICS: tuple[str, ...] = ("nato", "ukraine")
KINDS: frozenset[str] = frozenset({"org", "person", "place", "body", "event", "demonym"})
MAX_WEIGHT = 3.0

# Proclitics that may be glued to a word: optional conjunction, optional preposition, optional
# article; "لل" is ل + ال with the alef dropped.
_CONJ = ("", "و", "ف")
_PREP = ("", "ب", "ك", "ل")
PREFIXES: frozenset[str] = frozenset(
    {c + p + a for c in _CONJ for p in _PREP for a in ("", "ال")} | {c + "لل" for c in _CONJ}
) - {""}
_MAX_PREFIX = max(map(len, PREFIXES))
_MIN_STEM = 3  # never strip a prefix that leaves fewer letters than this

# Suffixes added to inflecting terms (demonyms/adjectives). ة is already folded to ه.
_NISBA_SUFFIXES = ("ه", "ين", "ون", "ات", "ها")  # after a final ي: ية يين يون يات يها
_PLAIN_SUFFIXES = ("ي", "يه", "يين", "يون", "يات", "ه", "ها", "ين", "ون", "ات")

_ENTRY_FIELDS = {"term", "kind", "weight", "inflect", "note"}
_NEGATIVE_FIELDS = {"pattern", "factor", "kinds", "note"}
_DAMPEN_FIELDS = {"terms", "factor", "min_hits", "note"}
TERM_SLOT = "{term}"
_TOPIC_FIELDS = {"threshold", "entries", "negative", "dampen", "support"}

DEFAULT_SCORING: dict[str, float] = {
    "title_weight": 3.0,
    "lead_weight": 2.0,
    "body_weight": 1.0,
    "lead_paragraphs": 2,
    "paragraph_cap": 2.0,
    "repeat_weight": 0.5,
    "coverage_floor": 0.25,
    "coverage_full": 0.3,
    "k": 0.35,
    "support_boost": 1.0,
}


# --------------------------------------------------------------------------- matching helpers


def _strip_article(word: str) -> str:
    if word.startswith("ال") and len(word) - 2 >= _MIN_STEM:
        return word[2:]
    return word


_FORMS_CACHE: dict[str, tuple[str, ...]] = {}
_FORMS_CACHE_MAX = 1 << 17


def _token_forms(token: str) -> tuple[str, ...]:
    """The token itself plus every reading of it with a known proclitic removed."""
    forms = [token]
    for n in range(1, min(_MAX_PREFIX, len(token) - _MIN_STEM) + 1):
        if token[:n] in PREFIXES:
            forms.append(token[n:])
    return tuple(forms)


def _forms_of(toks: list[str]) -> list[tuple[str, ...]]:
    """``_token_forms`` for each token, memoized in a bounded module-level dict."""
    cache = _FORMS_CACHE
    out = []
    for t in toks:
        f = cache.get(t)
        if f is None:
            if len(cache) >= _FORMS_CACHE_MAX:
                cache.clear()
            f = cache[t] = _token_forms(t)
        out.append(f)
    return out


def _inflections(key: str) -> set[str]:
    if key.endswith("يه") and len(key) > 4:  # written in the feminine: use the masculine base
        key = key[:-1]
    if key.endswith("ي"):
        return {key} | {key + s for s in _NISBA_SUFFIXES}
    return {key} | {key + s for s in _PLAIN_SUFFIXES}


def _compile_term(text: str, inflect: bool) -> tuple[frozenset[str], ...]:
    """One frozenset of accepted (clitic-free) forms per token of the term."""
    out = []
    for tok in tokens(text):
        key = _strip_article(tok)
        out.append(frozenset(_inflections(key) if inflect else {key}))
    return tuple(out)


def _compile_context(text: str) -> tuple[frozenset[str], ...]:
    """The words around a ``{term}`` slot, each as written: not inflected (``عضو`` must not
    accept ``عضوية``, membership; ``خارج`` not ``خارجية``, foreign ministry) and with its article
    when it has one (``المدافع``, a defender, is not ``مدافع``, cannons). A conjunction or
    preposition glued to the text's word is still read off it."""
    return tuple(frozenset({tok}) for tok in tokens(text))


@dataclass(frozen=True)
class Entry:
    term: str
    kind: str
    weight: float
    inflect: bool = False
    note: str = ""


class _Index:
    """Multi-word term index: accepted form of the first token -> candidates, longest first.

    With ``surface_rest`` the tokens after the first are compared as written (the accepted sets
    then hold the article forms too), so no preposition is read off them.
    """

    __slots__ = ("first", "surface_rest")

    def __init__(self, compiled: list[tuple[tuple[frozenset[str], ...], int]], surface_rest: bool = False):
        first: dict[str, list[tuple[tuple[frozenset[str], ...], int]]] = {}
        for seq, ident in compiled:
            for form in seq[0]:
                first.setdefault(form, []).append((seq[1:], ident))
        for cands in first.values():
            cands.sort(key=lambda c: -len(c[0]))
        self.first = {k: tuple(v) for k, v in first.items()}
        self.surface_rest = surface_rest

    def __getstate__(self):
        return self.first, self.surface_rest

    def __setstate__(self, state):
        self.first, self.surface_rest = state

    def find(self, forms: list[tuple[str, ...]], start: int) -> tuple[int, int] | None:
        """Longest match starting at ``start``: (entry id, length) or None."""
        best: tuple[int, int] | None = None
        n = len(forms)
        for form in forms[start]:
            cands = self.first.get(form)
            if not cands:
                continue
            for rest, ident in cands:
                length = len(rest) + 1
                if best is not None and length <= best[1]:
                    break
                if start + length > n:
                    continue
                if self.surface_rest:
                    found = all(forms[start + 1 + j][0] in accepted for j, accepted in enumerate(rest))
                else:
                    found = all(any(f in accepted for f in forms[start + 1 + j]) for j, accepted in enumerate(rest))
                if found:
                    best = (ident, length)
                    break
        return best

    def spans(
        self,
        forms: list[tuple[str, ...]],
        starts: list[int] | None = None,
        weights: tuple[float, ...] = (),
    ) -> list[tuple[int, int, int]]:
        """Non-overlapping matches (start, end, entry id), sorted by start.

        Longer matches win over the shorter ones they overlap wherever they start (so "قمة حلف
        شمال الأطلسي" yields the full name, not "قمة الحلف"); ties go to the higher weight, then
        to the earlier match. ``starts`` optionally limits the positions tried.
        """
        found = []
        for i in range(len(forms)) if starts is None else starts:
            hit = self.find(forms, i)
            if hit is not None:
                found.append((i, i + hit[1], hit[0]))
        if len(found) < 2:
            return found
        found.sort(key=lambda h: (h[0] - h[1], -(weights[h[2]] if weights else 0.0), h[0]))
        taken: list[tuple[int, int, int]] = []
        for h in found:
            if all(h[1] <= t[0] or t[1] <= h[0] for t in taken):
                taken.append(h)
        taken.sort()
        return taken


@dataclass(frozen=True)
class _Context:
    """A look-alike pattern around a match: ``before {term} after``; with ``kinds``, only around
    matches of entries of those kinds ("منتخب {term}" for places and demonyms: "الرئيس المنتخب
    زيلينسكي" is the president-elect, not a team)."""

    before: tuple[frozenset[str], ...]
    after: tuple[frozenset[str], ...]
    factor: float
    kinds: frozenset[str] | None = None

    def applies(self, forms: list[tuple[str, ...]], start: int, end: int) -> bool:
        nb, na = len(self.before), len(self.after)
        if start < nb or end + na > len(forms):
            return False
        for j, accepted in enumerate(self.before):
            if not any(f in accepted for f in forms[start - nb + j]):
                return False
        for j, accepted in enumerate(self.after):
            if not any(f in accepted for f in forms[end + j]):
                return False
        return True


@dataclass(frozen=True)
class _Topic:
    name: str
    threshold: float
    entries: tuple[Entry, ...]
    weights: tuple[float, ...]
    terms: _Index
    overlap_negatives: _Index | None  # patterns without {term}; ids index overlap_factors
    overlap_factors: tuple[float, ...]
    context_negatives: tuple[_Context, ...]
    dampen_terms: _Index | None
    support_terms: _Index | None
    dampen_factor: float
    dampen_min_hits: int


@dataclass(frozen=True)
class Lexicon:
    """A compiled lexicon; build it with :func:`load_lexicon`. Picklable (Beam side input)."""

    source: str
    topics: tuple[_Topic, ...]
    scoring: Mapping[str, float]

    def topic(self, name: str) -> _Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def trigger(self) -> frozenset[str]:
        """Every form that can start a term, a negative pattern or a dampener."""
        cached = self.__dict__.get("_trigger")
        if cached is None:
            forms: set[str] = set()
            for t in self.topics:
                for index in (t.terms, t.overlap_negatives, t.dampen_terms, t.support_terms):
                    if index is not None:
                        forms.update(index.first)
            cached = frozenset(forms)
            object.__setattr__(self, "_trigger", cached)
        return cached

    @property
    def thresholds(self) -> dict[str, float]:
        return {t.name: t.threshold for t in self.topics}


@dataclass(frozen=True)
class TopicResult:
    topics: list[str]
    nato_score: float
    ukraine_score: float
    evidence: dict[str, list[str]]


# --------------------------------------------------------------------------- loading


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _default_path():
    return resources.files("akhbar.transforms").joinpath("data/lexicon.yaml")


_DEFAULT: Lexicon | None = None


def load_lexicon(path: str | None = None) -> Lexicon:
    """Load, validate and compile a lexicon file (default: the packaged ``data/lexicon.yaml``).

    Raises ``ValueError`` naming the file, the offending entry and the problem.
    """
    global _DEFAULT
    if path is None:
        if _DEFAULT is None:
            res = _default_path()
            _DEFAULT = _parse(res.read_text(encoding="utf-8"), str(res))
        return _DEFAULT
    return _parse(read_lexicon_text(path), str(path))


def read_lexicon_text(path: str) -> str:
    """The text of a lexicon file, local or ``gs://``; ``ValueError`` naming the file."""
    from akhbar.transforms import store

    try:
        return store.read_bytes(str(path)).decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read lexicon: {exc}") from exc


def parse_lexicon(text: str, source: str = "<lexicon>") -> Lexicon:
    """Validate and compile lexicon YAML text; errors name ``source``."""
    return _parse(text, source)


def _parse(text: str, source: str) -> Lexicon:
    def fail(where: str, problem: str) -> ValueError:
        return ValueError(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise fail("", f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise fail("", "not valid YAML: nested too deeply") from exc
    if not isinstance(doc, dict):
        raise fail("", "expected a mapping at the top level")
    unknown = set(doc) - {"version", "scoring", "topics"}
    if unknown:
        raise fail("", f"unknown top-level key(s) {_keys(unknown)}")

    scoring = dict(DEFAULT_SCORING)
    raw_scoring = doc.get("scoring") or {}
    if not isinstance(raw_scoring, dict):
        raise fail("scoring", "expected a mapping")
    for key, value in raw_scoring.items():
        if key not in DEFAULT_SCORING:
            raise fail(f"scoring.{key}", f"unknown setting (known: {sorted(DEFAULT_SCORING)})")
        if not _is_number(value) or value < 0:
            raise fail(f"scoring.{key}", f"must be a non-negative number, got {value!r}")
        scoring[key] = value
    if scoring["coverage_floor"] > 1:
        raise fail("scoring.coverage_floor", "must be within [0, 1]")
    if scoring["coverage_full"] <= 0 or scoring["k"] <= 0:
        raise fail("scoring", "coverage_full and k must be positive")
    if int(scoring["lead_paragraphs"]) != scoring["lead_paragraphs"]:
        raise fail("scoring.lead_paragraphs", "must be a whole number")
    scoring["lead_paragraphs"] = int(scoring["lead_paragraphs"])

    topics_raw = doc.get("topics")
    if not isinstance(topics_raw, dict):
        raise fail("topics", "missing or not a mapping")
    unknown = set(topics_raw) - set(TOPICS)
    missing = set(TOPICS) - set(topics_raw)
    if unknown:
        raise fail("topics", f"unknown topic(s) {_keys(unknown)} (known: {list(TOPICS)})")
    if missing:
        raise fail("topics", f"missing topic(s) {sorted(missing)}")

    compiled_topics = []
    for name in TOPICS:
        compiled_topics.append(_parse_topic(name, topics_raw[name], fail))
    return Lexicon(source=source, topics=tuple(compiled_topics), scoring=scoring)


def _keys(keys: set) -> list:
    """Unknown keys in a stable order for a message; YAML keys may mix types (``1``, ``~``, ``foo``)."""
    return sorted(keys, key=str)


def _compile_word_list(terms: list[str], label: str, fail) -> list:
    """``[(compiled term, index)]`` of a list of inflectable terms; an entry without letters fails."""
    out = []
    for j, t in enumerate(terms):
        seq = _compile_term(t, inflect=True)
        if not seq:
            raise fail(f"{label}[{j}] ({t!r})", "no letters or digits")
        out.append((seq, j))
    return out


def _parse_topic(name: str, raw: Any, fail) -> _Topic:
    where = f"topics.{name}"
    if not isinstance(raw, dict):
        raise fail(where, "expected a mapping with 'entries'")
    unknown = set(raw) - _TOPIC_FIELDS
    if unknown:
        raise fail(where, f"unknown key(s) {_keys(unknown)}")
    threshold = raw.get("threshold", 0.5)
    if not _is_number(threshold) or not 0 < threshold < 1:
        raise fail(f"{where}.threshold", f"must be a number in (0, 1), got {threshold!r}")

    raw_entries = raw.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise fail(f"{where}.entries", "missing or empty list")
    entries: list[Entry] = []
    compiled = []
    seen: dict[tuple[frozenset[str], ...], str] = {}
    for i, item in enumerate(raw_entries):
        label = f"{where}.entries[{i}]"
        if not isinstance(item, dict):
            raise fail(label, f"expected a mapping with term/kind/weight, got {item!r}")
        term = item.get("term")
        if isinstance(term, str) and term.strip():
            label += f" (term {term!r})"
        else:
            raise fail(label, f"'term' must be a non-empty string, got {term!r}")
        unknown = set(item) - _ENTRY_FIELDS
        if unknown:
            raise fail(label, f"unknown field(s) {_keys(unknown)} (allowed: {sorted(_ENTRY_FIELDS)})")
        kind = item.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            raise fail(label, f"'kind' must be one of {sorted(KINDS)}, got {kind!r}")
        weight = item.get("weight")
        if not _is_number(weight) or not 0 < weight <= MAX_WEIGHT:
            raise fail(label, f"'weight' must be a number in (0, {MAX_WEIGHT}], got {weight!r}")
        inflect = item.get("inflect", kind == "demonym")
        if not isinstance(inflect, bool):
            raise fail(label, f"'inflect' must be true or false, got {inflect!r}")
        note = item.get("note", "")
        if not isinstance(note, str):
            raise fail(label, "'note' must be a string")
        seq = _compile_term(term, inflect)
        if not seq:
            raise fail(label, "term has no letters or digits after normalization")
        if any(len(min(s, key=len)) < 2 for s in seq):
            raise fail(label, "term contains a word too short to match safely")
        key = seq
        if key in seen:
            raise fail(label, f"duplicates {seen[key]} after normalization")
        seen[key] = f"entry {term!r}"
        compiled.append((seq, len(entries)))
        entries.append(Entry(term.strip(), kind, float(weight), inflect, note))

    raw_neg = raw.get("negative") or []
    if not isinstance(raw_neg, list):
        raise fail(f"{where}.negative", "expected a list")
    overlap: list[tuple[tuple[frozenset[str], ...], int]] = []
    overlap_factors: list[float] = []
    contexts: list[_Context] = []
    for i, item in enumerate(raw_neg):
        label = f"{where}.negative[{i}]"
        if isinstance(item, str):
            item = {"pattern": item}
        if not isinstance(item, dict):
            raise fail(label, f"expected a mapping with 'pattern', got {item!r}")
        pattern = item.get("pattern")
        if not isinstance(pattern, str) or not pattern.strip():
            raise fail(label, f"'pattern' must be a non-empty string, got {pattern!r}")
        label += f" (pattern {pattern!r})"
        unknown = set(item) - _NEGATIVE_FIELDS
        if unknown:
            raise fail(label, f"unknown field(s) {_keys(unknown)} (allowed: {sorted(_NEGATIVE_FIELDS)})")
        factor = item.get("factor", 0.0)
        if not _is_number(factor) or not 0 <= factor < 1:
            raise fail(label, f"'factor' must be a number in [0, 1), got {factor!r}")
        slots = pattern.count(TERM_SLOT)
        if slots > 1:
            raise fail(label, f"at most one {TERM_SLOT} slot is allowed")
        kinds = item.get("kinds")
        if kinds is not None:
            if slots != 1:
                raise fail(label, f"'kinds' applies to a {TERM_SLOT} pattern only")
            if (not isinstance(kinds, list) or not kinds
                    or not all(isinstance(k, str) and k in KINDS for k in kinds)):
                raise fail(label, f"'kinds' must be a list of {sorted(KINDS)}, got {kinds!r}")
            kinds = frozenset(kinds)
        if slots == 1:
            before_text, after_text = pattern.split(TERM_SLOT)
            before = _compile_context(before_text)
            after = _compile_context(after_text)
            if not before and not after:
                raise fail(label, f"a {TERM_SLOT} pattern needs words before or after the slot")
            contexts.append(_Context(before, after, float(factor), kinds))
        else:
            seq = _compile_term(pattern, inflect=True)
            if not seq:
                raise fail(label, "pattern has no letters or digits")
            # after the first word, as written: with or without the article, no preposition
            seq = (seq[0], *(frozenset(f for form in accepted for f in (form, "ال" + form)) for accepted in seq[1:]))
            overlap.append((seq, len(overlap_factors)))
            overlap_factors.append(float(factor))

    dampen = raw.get("dampen") or {}
    dlabel = f"{where}.dampen"
    if not isinstance(dampen, dict):
        raise fail(dlabel, "expected a mapping with terms/factor/min_hits")
    unknown = set(dampen) - _DAMPEN_FIELDS
    if unknown:
        raise fail(dlabel, f"unknown field(s) {_keys(unknown)} (allowed: {sorted(_DAMPEN_FIELDS)})")
    dampen_terms = dampen.get("terms") or []
    if not isinstance(dampen_terms, list) or not all(isinstance(t, str) and t.strip() for t in dampen_terms):
        raise fail(f"{dlabel}.terms", "expected a list of non-empty strings")
    dfactor = dampen.get("factor", 0.5)
    if not _is_number(dfactor) or not 0 <= dfactor <= 1:
        raise fail(f"{dlabel}.factor", f"must be a number in [0, 1], got {dfactor!r}")
    dmin = dampen.get("min_hits", 1)
    if not isinstance(dmin, int) or isinstance(dmin, bool) or dmin < 1:
        raise fail(f"{dlabel}.min_hits", f"must be a positive whole number, got {dmin!r}")
    dcompiled = _compile_word_list(dampen_terms, f"{dlabel}.terms", fail)

    raw_support = raw.get("support") or []
    if not isinstance(raw_support, list) or not all(isinstance(t, str) and t.strip() for t in raw_support):
        raise fail(f"{where}.support", "expected a list of non-empty strings")
    scompiled = _compile_word_list(raw_support, f"{where}.support", fail)

    return _Topic(
        name=name,
        threshold=float(threshold),
        entries=tuple(entries),
        weights=tuple(e.weight for e in entries),
        terms=_Index(compiled),
        overlap_negatives=_Index(overlap, surface_rest=True) if overlap else None,
        overlap_factors=tuple(overlap_factors),
        context_negatives=tuple(contexts),
        dampen_terms=_Index(dcompiled) if dcompiled else None,
        support_terms=_Index(scompiled) if scompiled else None,
        dampen_factor=float(dfactor),
        dampen_min_hits=dmin,
    )


# --------------------------------------------------------------------------- classification


# A private-use character survives normalize() and is not a word character, so a whole article
# can be normalized in one call and split back into its segments afterwards.
_SEP = "\ue000"

# One segment (title or paragraph): the clitic readings of each token, and the positions whose
# readings can start anything in the lexicon (the only places matching has to look at).
_Segment = tuple[list[tuple[str, ...]], list[int]]


# Bounded work per article: the body is read up to this many characters (whole paragraphs, the
# last one cut). A news story is a few thousand characters; a multi-megabyte "body" (a whole
# archive page, a feed of stories on one page) took 17 s for 4.5 MB of dense terms, and what its
# first 100,000 characters say is as good a judge of it as the rest.
MAX_BODY_CHARS = 100_000


def bounded_body(body: str) -> str:
    """``body`` up to :data:`MAX_BODY_CHARS` (whole paragraphs; a longer first one is cut)."""
    if len(body) <= MAX_BODY_CHARS:
        return body
    cut = body.rfind("\n", 0, MAX_BODY_CHARS)
    return body[:cut if cut > 0 else MAX_BODY_CHARS]


def _segments(title: str, body: str, trigger: frozenset[str]) -> tuple[_Segment, list[_Segment]]:
    lines = [line for line in bounded_body(body or "").replace(_SEP, " ").split("\n") if line.strip()]
    text = normalize((title or "").replace(_SEP, " ") + _SEP + _SEP.join(lines))
    parts = text.split(_SEP)
    segs: list[_Segment] = []
    for part in parts:
        forms = _forms_of(tokens(part, normalized=True))
        hot = [i for i, fs in enumerate(forms) if not trigger.isdisjoint(fs)]
        segs.append((forms, hot))
    title_seg = segs[0]
    paras = [seg for seg in segs[1:] if seg[0]]
    return title_seg, paras


def _matches(topic: _Topic, seg: _Segment) -> list[tuple[int, float]]:
    """(entry id, effective weight) for each match in one segment, look-alikes applied."""
    forms, hot = seg
    if not hot:
        return []
    hits = topic.terms.spans(forms, hot, topic.weights)
    if not hits:
        return []
    blocked = topic.overlap_negatives.spans(forms, hot) if topic.overlap_negatives else ()
    out = []
    for start, end, ident in hits:
        factor = 1.0
        for b_start, b_end, b_id in blocked:
            if start < b_end and b_start < end:
                factor = min(factor, topic.overlap_factors[b_id])
        for ctx in topic.context_negatives:
            if (ctx.factor < factor and (ctx.kinds is None or topic.entries[ident].kind in ctx.kinds)
                    and ctx.applies(forms, start, end)):
                factor = ctx.factor
        if factor > 0:
            out.append((ident, topic.entries[ident].weight * factor))
    return out


@dataclass(frozen=True)
class TopicMatches:
    """What the lexicon found for one topic in one article, before any scoring setting applies.

    ``title`` and each entry of ``paras`` list (entry id, weight after look-alikes) per match;
    ``support`` marks the segments (title first, then paragraphs) where the topic's support
    vocabulary occurs; ``off`` counts the dampen vocabulary. Kept apart from scoring so that
    tuning can score the same matches under many settings without matching again.
    """

    title: tuple[tuple[int, float], ...]
    paras: tuple[tuple[tuple[int, float], ...], ...]
    support: tuple[bool, ...]
    off: int

    @property
    def n_hits(self) -> int:
        return len(self.title) + sum(len(p) for p in self.paras)


def _collect(topic: _Topic, title: _Segment, paras: list[_Segment]) -> TopicMatches:
    found_title = tuple(_matches(topic, title))
    found_paras = tuple(tuple(_matches(topic, seg)) for seg in paras)
    any_hit = bool(found_title) or any(found_paras)
    support: tuple[bool, ...] = ()
    off = 0
    if any_hit and topic.support_terms is not None:
        support = tuple(
            bool(found) and bool(h) and bool(topic.support_terms.spans(f, h))
            for found, (f, h) in zip((found_title, *found_paras), (title, *paras))
        )
    if any_hit and topic.dampen_terms is not None:
        off = sum(len(topic.dampen_terms.spans(f, h)) for f, h in (title, *paras) if h)
    return TopicMatches(found_title, found_paras, support, off)


def score_matches(
    topic: _Topic, m: TopicMatches, s: Mapping[str, float]
) -> tuple[float, float, list[str]]:
    """(score, evidence, terms by credit) for one topic's matches under scoring settings ``s``."""
    if not m.n_hits:
        return 0.0, 0.0, []
    cap = s["paragraph_cap"]
    repeat = s["repeat_weight"]
    boost = s["support_boost"]
    credit: dict[int, float] = {}

    def segment(found, mult: float, supported: bool) -> float:
        if not found:
            return 0.0
        total = sum(w for _, w in found)
        strongest = max(w for _, w in found)
        e = min(cap, strongest + repeat * (total - strongest))
        if supported:
            e *= boost
        scale = e / total
        for ident, w in found:
            credit[ident] = credit.get(ident, 0.0) + w * mult * scale
        return e * mult

    sup = m.support or (False,) * (1 + len(m.paras))
    title_ev = segment(m.title, s["title_weight"], sup[0])
    body_ev = 0.0
    hit_paras = 0
    lead_n = s["lead_paragraphs"]
    for idx, found in enumerate(m.paras):
        mult = s["lead_weight"] if idx < lead_n else s["body_weight"]
        e = segment(found, mult, sup[idx + 1])
        if e > 0:
            hit_paras += 1
            body_ev += e
    if m.paras:
        coverage = hit_paras / len(m.paras)
        g = s["coverage_floor"] + (1 - s["coverage_floor"]) * min(1.0, coverage / s["coverage_full"])
    else:
        g = 1.0
    evidence = title_ev + g * body_ev
    # Off-topic context (e.g. a football match in Kyiv): when its vocabulary is at least as
    # frequent as the topic's own terms, the topic is likely only the setting.
    if m.off and m.off >= topic.dampen_min_hits and m.off >= m.n_hits:
        evidence *= topic.dampen_factor
    score = 1.0 - math.exp(-s["k"] * evidence)
    order = sorted(credit, key=lambda i: (-credit[i], -topic.entries[i].weight, i))
    terms = [topic.entries[i].term for i in order]
    return min(1.0, max(0.0, score)), evidence, terms


def match_lexicon(title: str, body: str, lexicon: Lexicon) -> dict[str, TopicMatches]:
    """Every topic's matches in ``title`` + ``body`` (paragraphs separated by newlines)."""
    title_seg, paras = _segments(title, body, lexicon.trigger)
    return {topic.name: _collect(topic, title_seg, paras) for topic in lexicon.topics}


def classify(
    title: str,
    body: str,
    lexicon: Lexicon,
    *,
    thresholds: dict[str, float] | None = None,
) -> TopicResult:
    """Score ``title`` + ``body`` (paragraphs separated by newlines) for NATO and Ukraine."""
    limits = lexicon.thresholds
    if thresholds:
        unknown = set(thresholds) - set(limits)
        if unknown:
            raise ValueError(f"unknown topic(s) in thresholds: {sorted(unknown)}")
        limits.update(thresholds)
    matches = match_lexicon(title, body, lexicon)
    scores: dict[str, float] = {}
    evidence: dict[str, list[str]] = {}
    for topic in lexicon.topics:
        scores[topic.name], _, evidence[topic.name] = score_matches(
            topic, matches[topic.name], lexicon.scoring
        )
    # A topic needs at least one lexicon match: no term, no topic, whatever the thresholds.
    chosen = [name for name in TOPICS if evidence[name] and scores[name] >= limits[name]]
    return TopicResult(
        topics=chosen,
        nato_score=scores["nato"],
        ukraine_score=scores["ukraine"],
        evidence=evidence,
    )


__all__ = [
    "Entry", "Lexicon", "TopicMatches", "TopicResult", "classify", "load_lexicon", "match_lexicon",
    "score_matches", "PREFIXES", "TOPICS",
]
