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
import zlib
from typing import Iterator

from akhbar.transforms.classify import TOPICS

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a UTF-8 file, optionally gzipped; a leading BOM is dropped.
    Text that is not UTF-8 (a UTF-16 export, say) is a ``ValueError`` naming the file and line."""
    n = 0
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as fh:
        try:
            for n, raw in enumerate(fh, 1):
                try:
                    yield n, raw.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise ValueError(f"{path}:{n}: not UTF-8 text ({e.reason} at byte {e.start})") from e
        except (OSError, EOFError, zlib.error) as e:  # not gzip, truncated or corrupt gzip
            raise ValueError(f"{path}:{n + 1}: cannot read: {e}") from e


_JSON_KINDS = {list: "an array", str: "a string", bool: "true/false", int: "a number", float: "a number",
               type(None): "null"}


def _json_rows(path: str) -> Iterator[tuple[str, dict]]:
    """``("path:line", object)`` for each non-blank line of a JSON Lines file; a line that is not a
    JSON object is a ``ValueError`` naming the file and line."""
    for n, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON: {e.msg} (column {e.colno})") from e
        except RecursionError as e:
            raise ValueError(f"{where}: not valid JSON: nested too deeply") from e
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object (JSON Lines: one object per line), "
                             f"got {_JSON_KINDS.get(type(row), type(row).__name__)}")
        yield where, row


def _id(row: dict, where: str) -> str | None:
    v = row.get("id", row.get("docno"))
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise ValueError(f"{where}: 'id'/'docno' must be a string or a whole number, got {v!r}")
    return str(v)


def _text(row: dict, where: str) -> tuple[str, str]:
    """The title and body (or text) of a row; either may be missing or null, not another type."""
    title, body = row.get("title"), row.get("body", row.get("text"))
    for name, value in (("title", title), ("body" if "body" in row else "text", body)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: {name!r} must be a string, got {value!r}")
    return title or "", body or ""


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
        ident = _id(row, where)
        if not ident:
            raise ValueError(f"{where}: no 'id' or 'docno'")
        rec = {}
        for t in TOPICS:
            if t not in row:
                raise ValueError(f"{where}: no {t!r} column")
            rec[t] = _flag(row[t], f"{where}: {t}")
        if row.get("title") is not None or row.get("body", row.get("text")) is not None:
            rec["title"], rec["body"] = _text(row, where)
        src = row.get("source", row.get("src"))
        if src:
            rec["source"] = str(src)
        out[ident] = rec

    if path.endswith((".jsonl", ".jsonl.gz", ".json")):
        for where, row in _json_rows(path):
            add(row, where)
    else:
        reader = csv.DictReader((line for _, line in _lines(path)), delimiter="\t")
        for row in reader:
            add(row, f"{path}:{reader.line_num}")
    return out


def iter_articles(path: str) -> Iterator[tuple[str, dict]]:
    """``("path:line", article)`` of a JSON Lines articles file."""
    return _json_rows(path)


def load_training_set(labels_path: str, articles_path: str | None) -> tuple[list[tuple[str, str]], dict, list[str]]:
    labels = read_labels(labels_path)
    if not labels:
        raise ValueError(f"{labels_path}: no training articles (no labelled rows)")
    texts: dict[str, tuple[str, str, str | None]] = {
        k: (v["title"], v["body"], v.get("source")) for k, v in labels.items() if "body" in v
    }
    if articles_path:
        for where, rec in iter_articles(articles_path):
            ident = _id(rec, where)
            if ident in labels and ident not in texts:
                texts[ident] = (*_text(rec, where), rec.get("source", rec.get("src")))
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
    from akhbar.transforms.classify import load_lexicon

    try:  # the user's files are checked before Beam and scikit-learn (seconds) are imported
        if args.lexicon is not None:
            load_lexicon(args.lexicon)
        docs, gold, groups = load_training_set(args.labels, args.articles)
    except (OSError, ValueError) as e:
        print(f"akhbar: {e}", file=sys.stderr)
        return 2
    from akhbar.transforms.model import ML_EXTRA_HINT, save_model, train_model

    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(f"akhbar: {ML_EXTRA_HINT}", file=sys.stderr)
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
