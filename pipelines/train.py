"""``akhbar classify train``: fit the optional learned topic model on the user's labelled articles.

    akhbar classify train --labels labels.tsv --articles articles.jsonl.gz --out model.joblib

Labels: TSV (header row) or JSONL, one row per article, with an id column (``id`` or ``docno``) and
0/1 columns ``nato`` and ``ukraine``; other columns are ignored. A JSONL label row may carry the
article itself (``title`` + ``body`` or ``text``), then ``--articles`` is not needed.
Articles: JSONL, optionally gzipped, with ``id`` or ``docno``, ``title`` and ``body`` or ``text``
(paragraphs separated by newlines). Optional ``source``/``src`` is used to group the folds.
"""
from __future__ import annotations

import csv
import gzip
import json
import sys
from typing import Iterator

from akhbar.transforms.classify import TOPICS

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _open(path: str):
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")


def _id(row: dict) -> str | None:
    v = row.get("id", row.get("docno"))
    return None if v is None else str(v)


def _flag(value, where: str) -> bool:
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"{where}: expected 0 or 1, got {value!r}")


def read_labels(path: str) -> dict[str, dict]:
    """id -> {"nato": bool, "ukraine": bool, maybe "title"/"body"/"source"}; errors name the line."""
    out: dict[str, dict] = {}

    def add(row: dict, where: str):
        ident = _id(row)
        if not ident:
            raise ValueError(f"{where}: no 'id' or 'docno'")
        rec = {}
        for t in TOPICS:
            if t not in row:
                raise ValueError(f"{where}: no {t!r} column")
            rec[t] = _flag(row[t], f"{where}: {t}")
        if row.get("title") is not None or row.get("body", row.get("text")) is not None:
            rec["title"] = row.get("title") or ""
            rec["body"] = row.get("body", row.get("text")) or ""
        src = row.get("source", row.get("src"))
        if src:
            rec["source"] = str(src)
        out[ident] = rec

    with _open(path) as fh:
        if path.endswith((".jsonl", ".jsonl.gz", ".json")):
            for n, line in enumerate(fh, 1):
                if line.strip():
                    add(json.loads(line), f"{path}:{n}")
        else:
            for n, row in enumerate(csv.DictReader(fh, delimiter="\t"), 2):
                add(row, f"{path}:{n}")
    return out


def iter_articles(path: str) -> Iterator[dict]:
    with _open(path) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_training_set(labels_path: str, articles_path: str | None) -> tuple[list[tuple[str, str]], dict, list[str]]:
    labels = read_labels(labels_path)
    texts: dict[str, tuple[str, str, str | None]] = {
        k: (v["title"], v["body"], v.get("source")) for k, v in labels.items() if "body" in v
    }
    if articles_path:
        for rec in iter_articles(articles_path):
            ident = _id(rec)
            if ident in labels and ident not in texts:
                texts[ident] = (rec.get("title") or "", rec.get("body", rec.get("text")) or "",
                                rec.get("source", rec.get("src")))
    missing = [k for k in labels if k not in texts]
    if missing:
        raise ValueError(f"{len(missing)} labelled articles have no text (first: {missing[0]!r}); "
                         "give --articles or put title/body in the labels file")
    ids = sorted(labels)
    docs = [(texts[i][0], texts[i][1]) for i in ids]
    gold = {t: [labels[i][t] for i in ids] for t in TOPICS}
    groups = [labels[i].get("source") or texts[i][2] or "" for i in ids]
    return docs, gold, groups


def train_command(args) -> int:
    from akhbar.transforms.model import ML_EXTRA_HINT, save_model, train_model

    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(f"akhbar: {ML_EXTRA_HINT}", file=sys.stderr)
        return 2
    try:
        docs, gold, groups = load_training_set(args.labels, args.articles)
    except (OSError, ValueError, json.JSONDecodeError) as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return 2
    use_groups = groups if len(set(groups)) >= 2 and all(groups) else None
    try:
        model = train_model(docs, gold, lexicon_path=args.lexicon, groups=use_groups, c=args.c,
                            threshold_folds=args.folds)
    except ValueError as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return 2
    save_model(model, args.out)
    pos = ", ".join(f"{t} {sum(gold[t])}" for t in TOPICS)
    thr = ", ".join(f"{t} {model.thresholds[t]:.3f}" for t in TOPICS)
    print(f"trained on {len(docs)} articles (positives: {pos}); thresholds {thr} "
          f"(from out-of-fold predictions, {'by source' if use_groups else 'round-robin'} folds)")
    print(f"wrote {args.out}; use it with: akhbar run ... --classifier {args.out}")
    return 0
