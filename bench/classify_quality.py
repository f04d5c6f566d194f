#!/usr/bin/env python3
"""Quality and speed of the NATO/Ukraine classifier on the labelled dev set.

    python bench/classify_quality.py --eval-dir ../shared/eval [--lexicon PATH] [--show 5] [--cv] [--model]
        [--labels TSV] [--articles JSONL] [--no-seeds]

Reads ``topics/dev.tsv`` (docno, source, section, nato, ukraine, unsure, kind), joins it to
``articles/ant_multisource_v2.1.jsonl.gz`` by docno (title + text, paragraphs split by newlines),
and adds the five files in ``seeds/`` as positives for both topics (they have no separate title:
the whole file is the body, boilerplate included). Prints precision / recall / F1 per topic, on
all rows and on the rows not marked ``unsure``, how many rows that mention no NATO/Ukraine term
(``kind`` ``no-term`` or ``russia-no-term``) got a topic, a few false positives / negatives with
their evidence, and the classification time per article.

``--labels`` scores another labels file of the same shape instead of the dev set (a held-out set,
say; ``unsure``, ``kind`` and ``source`` may be missing), ``--articles`` reads the texts from
another JSONL file (gzipped or not, ``docno``, ``title``, ``text``), ``--no-seeds`` leaves the
seeds out.

``--cv`` adds grouped cross-validation on the dev rows (seeds left out: they are checked on their
own): 5 folds by outlet and 5 contiguous date blocks. For the lexicon, two figures: the shipped
settings and thresholds applied per fold (optimistic: they were chosen on all of dev), and the
tuning procedure nested (settings from LEXICON_GRID and thresholds chosen on the training folds
only — the honest estimate). ``--model`` adds the learned model (needs scikit-learn) trained on
each fold's training rows, side by side; out-of-fold errors are listed for both.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from pathlib import Path

from akhbar.transforms import evaluate as ev
from akhbar.transforms.classify import TOPICS, classify, load_lexicon, match_lexicon, score_matches


def load_dev(eval_dir: Path, labels_path: Path | None = None, articles_path: Path | None = None,
             seeds: bool = True) -> list[dict]:
    labels_path = labels_path or eval_dir / "topics" / "dev.tsv"
    labels = ev.read_labels(labels_path)
    if labels is None:
        print(f"{labels_path}: not a labels file (a TSV with a header naming docno, nato and ukraine)",
              file=sys.stderr)
        raise SystemExit(2)
    rows: list[dict] = []
    articles_path = articles_path or eval_dir / "articles" / "ant_multisource_v2.1.jsonl.gz"
    opener = gzip.open if str(articles_path).endswith(".gz") else open
    with opener(articles_path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            lab = labels.get(rec.get("docno"))
            if lab is None:
                continue
            rows.append(
                {
                    "id": rec["docno"],
                    "title": rec.get("title") or "",
                    "body": rec.get("text") or "",
                    "nato": lab["nato"] == "1",
                    "ukraine": lab["ukraine"] == "1",
                    "unsure": lab.get("unsure") == "1",
                    "kind": lab.get("kind", ""),
                    "source": lab.get("source") or rec.get("src") or "",
                }
            )
    missing = len(labels) - len(rows)
    if missing:
        print(f"warning: {missing} labelled docnos not found in the articles file", file=sys.stderr)
    for path in sorted((eval_dir / "seeds").glob("*.txt")) if seeds else ():
        rows.append(
            {
                "id": f"seed:{path.name}",
                "title": "",
                "body": path.read_text(encoding="utf-8"),
                "nato": True,
                "ukraine": True,
                "unsure": False,
                "kind": "seed",
                "source": "seed",
            }
        )
    return rows


def prf(pairs: list[tuple[bool, bool]]) -> tuple[float, float, float, int, int, int]:
    tp = sum(1 for gold, pred in pairs if gold and pred)
    fp = sum(1 for gold, pred in pairs if not gold and pred)
    fn = sum(1 for gold, pred in pairs if gold and not pred)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, tp, fp, fn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval-dir", default=os.path.join("..", "shared", "eval"), type=Path)
    ap.add_argument("--lexicon", default=None, help="lexicon YAML (default: the packaged one)")
    ap.add_argument("--show", type=int, default=5, help="errors to list per topic and kind")
    ap.add_argument("--cv", action="store_true", help="add grouped cross-validation of the lexicon")
    ap.add_argument("--model", action="store_true", help="with --cv: also cross-validate the learned model")
    ap.add_argument("--labels", type=Path, help="labels TSV to score (default: EVAL_DIR/topics/dev.tsv)")
    ap.add_argument("--articles", type=Path,
                    help="articles JSONL(.gz) with the labelled texts (default: the ANT multisource corpus)")
    ap.add_argument("--no-seeds", action="store_true", help="leave the five seed texts out")
    args = ap.parse_args(argv)

    lexicon = load_lexicon(args.lexicon)
    rows = load_dev(args.eval_dir, args.labels, args.articles, seeds=not args.no_seeds)
    if not rows:
        print("no labelled rows found in the articles file", file=sys.stderr)
        return 2

    results = []
    t0 = time.perf_counter()
    for row in rows:
        results.append(classify(row["title"], row["body"], lexicon))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()  # second pass: token caches warm, as in a long-running worker
    for row in rows:
        classify(row["title"], row["body"], lexicon)
    elapsed = time.perf_counter() - t0
    total_chars = sum(len(r["title"]) + len(r["body"]) for r in rows)
    total_bytes = sum(len((r["title"] + r["body"]).encode("utf-8")) for r in rows)

    n_pos = {t: sum(r[t] for r in rows) for t in TOPICS}
    print(f"lexicon: {lexicon.source}")
    print(f"rows: {len(rows)} (nato positives {n_pos['nato']}, ukraine positives {n_pos['ukraine']})")
    print(
        f"time: {elapsed * 1000 / len(rows):.3f} ms/article warm ({cold * 1000 / len(rows):.3f} cold); "
        f"articles average {total_chars / len(rows):.0f} chars; "
        f"{elapsed * 1e6 / total_bytes * 5000:.0f} us per 5 KB of UTF-8 text"
    )
    print()
    print(f"{'topic':8} {'subset':10} {'P':>6} {'R':>6} {'F1':>6}   tp  fp  fn")
    for topic in TOPICS:
        for subset, keep in (("all", lambda r: True), ("sure-only", lambda r: not r["unsure"])):
            pairs = [
                (row[topic], topic in res.topics) for row, res in zip(rows, results) if keep(row)
            ]
            p, r, f, tp, fp, fn = prf(pairs)
            print(f"{topic:8} {subset:10} {p:6.3f} {r:6.3f} {f:6.3f} {tp:4d}{fp:4d}{fn:4d}")
    no_term = [(row, res) for row, res in zip(rows, results) if row["kind"] in ev.NO_TERM_KINDS]
    given = [row["id"] for row, res in no_term if res.topics]
    print(f"\nrows that mention no NATO/Ukraine term given a topic: {len(given)} of {len(no_term)}"
          + (f" ({', '.join(given[:10])})" if given else ""))
    for topic in TOPICS:
        score_attr = f"{topic}_score"
        for label, want_gold in (("false positives", False), ("false negatives", True)):
            errs = [
                (row, res)
                for row, res in zip(rows, results)
                if row[topic] == want_gold and (topic in res.topics) != want_gold
            ]
            errs.sort(key=lambda x: getattr(x[1], score_attr), reverse=not want_gold)
            print(f"\n{topic} {label} ({len(errs)}):")
            for row, res in errs[: args.show]:
                flag = " [unsure]" if row["unsure"] else ""
                print(
                    f"  {getattr(res, score_attr):.2f} {row['id']}{flag} | {row['title'][:70]}"
                    f" | evidence {res.evidence[topic][:4]}"
                )
    if args.cv:
        cross_validation(lexicon, rows, args)
    return 0


def _line(name: str, res: ev.CVResult, topic: str) -> str:
    c = res.pooled(topic)
    m, sd = res.f1_mean_sd(topic)
    return (f"  {name:26} {topic:8} {c.precision:6.3f} {c.recall:6.3f} {c.f1:6.3f}   {m:.3f} ± {sd:.3f}"
            f"  {c.tp:3d}{c.fp:4d}{c.fn:4d}")


def _errors(name: str, res: ev.CVResult, rows: list[dict], show: int) -> None:
    for topic in TOPICS:
        fps = [r for r, p in zip(rows, res.predictions[topic]) if p and not r[topic]]
        fns = [r for r, p in zip(rows, res.predictions[topic]) if r[topic] and not p]
        print(f"\n{name}, {res.scheme} folds, {topic}: {len(fps)} false positives, {len(fns)} false negatives")
        for label, errs in (("FP", fps), ("FN", fns)):
            for r in errs[:show]:
                flag = " [unsure]" if r["unsure"] else ""
                print(f"  {label} {r['id']}{flag} | {r['title'][:70]}")


def cross_validation(lexicon, all_rows: list[dict], args) -> None:
    rows = [r for r in all_rows if r["kind"] != "seed"]
    seeds = [r for r in all_rows if r["kind"] == "seed"]
    gold = {t: [r[t] for r in rows] for t in TOPICS}
    t0 = time.perf_counter()
    matches = [match_lexicon(r["title"], r["body"], lexicon) for r in rows]
    settings = ev.grid_settings(lexicon.scoring, ev.LEXICON_GRID)
    table = ev.evidence_table(lexicon, matches, settings)
    shipped = {t: [score_matches(lexicon.topic(t), m[t], lexicon.scoring)[1] for m in matches] for t in TOPICS}
    k = lexicon.scoring["k"]
    cuts = {t: -math.log(1 - lexicon.thresholds[t]) / k for t in TOPICS}
    print(f"\ncross-validation on {len(rows)} dev rows ({len(settings)} lexicon settings searched, "
          f"{time.perf_counter() - t0:.1f} s to score them all)")
    schemes = {
        "outlet": ev.folds_by_group([r["source"] for r in rows]),
        "date": ev.folds_by_date([r["id"] for r in rows], 5),
    }
    prepared = None
    if args.model:
        from akhbar.transforms.model import prepare, train_model

        prepared = prepare([(r["title"], r["body"]) for r in rows])
    results = []
    for scheme, folds in schemes.items():
        print(f"\n{scheme} folds ({len(set(folds))}): pooled P R F1, per-fold F1 mean ± sd, tp fp fn")
        fixed = ev.evaluate_fixed(shipped, cuts, gold, folds, scheme)
        nested = ev.cross_validate_lexicon(table, settings, gold, folds, scheme)
        entries = [("lexicon, shipped settings", fixed), ("lexicon, tuned in each fold", nested)]
        if prepared is not None:
            t1 = time.perf_counter()
            model_res = ev.CVResult(scheme)
            preds = {t: [False] * len(rows) for t in TOPICS}
            for f in sorted(set(folds)):
                train = [i for i in range(len(rows)) if folds[i] != f]
                test = [i for i in range(len(rows)) if folds[i] == f]
                model = train_model(prepared.subset(train), {t: [gold[t][i] for i in train] for t in TOPICS},
                                    groups=[rows[i]["source"] for i in train])
                decided = [model.decide(p) for p in model.predict_proba(prepared.subset(test))]
                for i, d in zip(test, decided):
                    for t in TOPICS:
                        preds[t][i] = t in d
                model_res.folds.append({t: ev.prf([gold[t][i] for i in test], [preds[t][i] for i in test])
                                        for t in TOPICS})
            model_res.predictions = preds
            entries.append((f"model ({time.perf_counter() - t1:.0f} s)", model_res))
        for topic in TOPICS:
            for name, res in entries:
                print(_line(name, res, topic))
        for c in nested.chosen:
            print(f"  fold {c['fold']} chose {c['setting']} evidence cuts "
                  f"{ {t: round(v, 2) for t, v in c['cuts'].items()} }")
        results += [(n, r) for n, r in entries[1:]]
    for name, res in results:
        _errors(name, res, rows, args.show)
    got = [classify(r["title"], r["body"], lexicon).topics for r in seeds]
    print(f"\nseeds (2022-2025, not in any fold): {sum(g == list(TOPICS) for g in got)}/{len(seeds)} get both "
          f"topics with the shipped lexicon")


if __name__ == "__main__":
    sys.exit(main())
