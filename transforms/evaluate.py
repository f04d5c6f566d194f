"""Measuring and tuning the topic classifiers: P/R/F1, folds, threshold choice, cross-validation.

Pure functions over plain lists; the benchmark (``bench/classify_quality.py``) and the training
command (``akhbar classify train``) use them, and tests call them on small fixtures.

Cross-validation here is *grouped*: articles are split by outlet or by date block, never at
random, so a fold's test articles do not share an outlet's house style (or a week's news cycle)
with its training articles. Every choice the tuned classifier makes — scoring settings and
thresholds — is made on the training folds only; the held-out fold is scored once.
"""
from __future__ import annotations

import csv
import itertools
import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from akhbar.transforms.classify import TOPICS, Lexicon, TopicMatches, score_matches


@dataclass(frozen=True)
class PRF:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    def __add__(self, other: "PRF") -> "PRF":
        return PRF(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def prf(gold: Iterable[bool], pred: Iterable[bool]) -> PRF:
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        tp += g and p
        fp += (not g) and p
        fn += g and not p
    return PRF(tp, fp, fn)


# --------------------------------------------------------------------------- labels files

# labelled rows that mention no NATO/Ukraine term at all (negatives by construction)
NO_TERM_KINDS = ("no-term", "russia-no-term")


def read_labels(path) -> dict[str, dict] | None:
    """docno → row of a labels TSV in the shape of ``topics/dev.tsv`` (a header with ``docno``,
    ``nato``, ``ukraine``; ``unsure``, ``kind``, ``source`` optional); None if ``path`` has no
    such header (a plain ids file, say)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if not {"docno", *TOPICS} <= set(reader.fieldnames or ()):
            return None
        return {row["docno"]: row for row in reader}


# --------------------------------------------------------------------------- folds

_DATE = re.compile(r"(\d{8})$")


def date_key(doc_id: str) -> str:
    """The YYYYMMDD an ANT-style id ends with (``SK-internationalNews-78-20180222``), or ''."""
    m = _DATE.search(doc_id)
    return m.group(1) if m else ""


def folds_by_group(groups: Sequence[str], k: int | None = None) -> list[int]:
    """Fold number per row, one fold per distinct group (or ``k`` folds of whole groups,
    largest first, each to the currently smallest fold)."""
    names = sorted(set(groups))
    if k is None or k >= len(names):
        index = {g: i for i, g in enumerate(names)}
        return [index[g] for g in groups]
    sizes = {g: 0 for g in names}
    for g in groups:
        sizes[g] += 1
    load = [0] * k
    assign: dict[str, int] = {}
    for g in sorted(names, key=lambda g: (-sizes[g], g)):
        i = min(range(k), key=lambda j: (load[j], j))
        assign[g] = i
        load[i] += sizes[g]
    return [assign[g] for g in groups]


def folds_by_date(ids: Sequence[str], k: int = 5) -> list[int]:
    """``k`` contiguous date blocks of (nearly) equal size; one date never spans two folds."""
    order = sorted(range(len(ids)), key=lambda i: (date_key(ids[i]), ids[i]))
    out = [0] * len(ids)
    n = len(ids)
    fold = 0
    prev_date = None
    for rank, i in enumerate(order):
        d = date_key(ids[i])
        target = min(k - 1, rank * k // n)
        if target > fold and d != prev_date:
            fold = target
        out[i] = fold
        prev_date = d
    return out


# --------------------------------------------------------------------------- thresholds


def best_threshold(values: Sequence[float], gold: Sequence[bool]) -> tuple[float, PRF]:
    """The cut on ``values`` (predict positive when value >= cut) that maximizes F1 on these rows.

    The cut is placed halfway between the last value taken and the next lower one, so it does not
    sit on a training example; among equally good cuts the middle one is taken. Rows with value
    0 are never predicted positive (no evidence, no topic).
    """
    n_pos = sum(gold)
    distinct = sorted({v for v in values if v > 0}, reverse=True)
    if not distinct:
        return math.inf, PRF(0, 0, n_pos)
    by_value: dict[float, list[int]] = {}
    for v, g in zip(values, gold):
        if v > 0:
            c = by_value.setdefault(v, [0, 0])
            c[0 if g else 1] += 1
    tp = fp = 0
    scored = []
    for v in distinct:
        tp += by_value[v][0]
        fp += by_value[v][1]
        scored.append((PRF(tp, fp, n_pos - tp), v))
    best = max(s[0].f1 for s in scored)
    ties = [i for i, s in enumerate(scored) if s[0].f1 >= best - 1e-12]
    i = ties[len(ties) // 2]
    counts, v = scored[i]
    lower = distinct[i + 1] if i + 1 < len(distinct) else 0.0
    return (v + lower) / 2, counts


# --------------------------------------------------------------------------- lexicon tuning

# Scoring settings searched by cross-validation (k is not searched: with a free threshold it only
# rescales the score). Kept coarse on purpose: a few dozen positives cannot support a fine grid.
LEXICON_GRID: dict[str, tuple[float, ...]] = {
    "title_weight": (2.0, 3.0, 4.0),
    "lead_weight": (1.0, 1.25, 1.5, 2.0),
    "coverage_floor": (0.1, 0.25, 0.5),
    "coverage_full": (0.1, 0.2, 0.3),
    "paragraph_cap": (2.0, 3.0),
    "repeat_weight": (0.25, 0.5),
    "support_boost": (1.0, 1.25, 1.5),
}


def grid_settings(base: Mapping[str, float], grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    keys = list(grid)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        s = dict(base)
        s.update(zip(keys, combo))
        out.append(s)
    return out


def evidence_table(
    lexicon: Lexicon, matches: Sequence[Mapping[str, TopicMatches]], settings: Sequence[Mapping[str, float]]
) -> list[dict[str, list[float]]]:
    """Evidence per setting, per topic, per row (the expensive matching is done once, before)."""
    table = []
    topics = {t: lexicon.topic(t) for t in TOPICS}
    for s in settings:
        table.append(
            {t: [score_matches(topics[t], m[t], s)[1] for m in matches] for t in TOPICS}
        )
    return table


@dataclass
class CVResult:
    """Per-fold and pooled figures of one classifier under one fold scheme."""

    scheme: str
    folds: list[dict[str, PRF]] = field(default_factory=list)
    chosen: list[dict] = field(default_factory=list)  # what each fold's training chose
    predictions: dict[str, list[bool]] = field(default_factory=dict)  # out-of-fold, per topic

    def pooled(self, topic: str) -> PRF:
        total = PRF(0, 0, 0)
        for f in self.folds:
            total = total + f[topic]
        return total

    def f1_mean_sd(self, topic: str) -> tuple[float, float]:
        vals = [f[topic].f1 for f in self.folds if f[topic].tp + f[topic].fn > 0]
        if not vals:
            return 0.0, 0.0
        return statistics.fmean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0


def _select(
    table: list[dict[str, list[float]]], gold: Mapping[str, Sequence[bool]], rows: Sequence[int]
) -> tuple[int, dict[str, float]]:
    """Setting index and thresholds (in evidence units) with the best mean training F1."""
    best = (-1.0, 0, {})
    for ci, ev in enumerate(table):
        total = 0.0
        cuts = {}
        for t in TOPICS:
            cut, counts = best_threshold([ev[t][i] for i in rows], [gold[t][i] for i in rows])
            cuts[t] = cut
            total += counts.f1
        if total > best[0] + 1e-12:
            best = (total, ci, cuts)
    return best[1], best[2]


def tune_lexicon(
    table: list[dict[str, list[float]]], gold: Mapping[str, Sequence[bool]], rows: Sequence[int] | None = None
) -> tuple[int, dict[str, float]]:
    """Choose a setting and per-topic evidence thresholds on ``rows`` (default: all)."""
    n = len(next(iter(gold.values())))
    return _select(table, gold, list(range(n)) if rows is None else rows)


def cross_validate_lexicon(
    table: list[dict[str, list[float]]],
    settings: Sequence[Mapping[str, float]],
    gold: Mapping[str, Sequence[bool]],
    folds: Sequence[int],
    scheme: str,
) -> CVResult:
    """Nested: each fold's setting and thresholds are chosen on the other folds only."""
    res = CVResult(scheme)
    n = len(folds)
    preds = {t: [False] * n for t in TOPICS}
    for f in sorted(set(folds)):
        train = [i for i in range(n) if folds[i] != f]
        test = [i for i in range(n) if folds[i] == f]
        ci, cuts = _select(table, gold, train)
        fold_counts = {}
        for t in TOPICS:
            p = [table[ci][t][i] >= cuts[t] and table[ci][t][i] > 0 for i in test]
            for i, v in zip(test, p):
                preds[t][i] = v
            fold_counts[t] = prf([gold[t][i] for i in test], p)
        res.folds.append(fold_counts)
        res.chosen.append({"fold": f, "setting": {k: settings[ci][k] for k in LEXICON_GRID}, "cuts": cuts})
    res.predictions = preds
    return res


def evaluate_fixed(
    evidence: Mapping[str, Sequence[float]],
    cuts: Mapping[str, float],
    gold: Mapping[str, Sequence[bool]],
    folds: Sequence[int],
    scheme: str,
) -> CVResult:
    """Per-fold figures of a classifier whose setting and thresholds are fixed in advance."""
    res = CVResult(scheme)
    n = len(folds)
    for f in sorted(set(folds)):
        test = [i for i in range(n) if folds[i] == f]
        res.folds.append(
            {t: prf([gold[t][i] for i in test], [evidence[t][i] > 0 and evidence[t][i] >= cuts[t] for i in test])
             for t in TOPICS}
        )
    res.predictions = {t: [evidence[t][i] > 0 and evidence[t][i] >= cuts[t] for i in range(n)] for t in TOPICS}
    return res


def evidence_to_score_threshold(cut: float, k: float) -> float:
    """The score threshold (as written in the lexicon file) equal to an evidence cut."""
    return 1.0 - math.exp(-k * cut)


__all__ = [
    "PRF", "prf", "date_key", "folds_by_group", "folds_by_date", "best_threshold", "LEXICON_GRID",
    "grid_settings", "evidence_table", "CVResult", "tune_lexicon", "cross_validate_lexicon",
    "evaluate_fixed", "evidence_to_score_threshold",
]
