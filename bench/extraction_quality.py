#!/usr/bin/env python3
"""Extraction quality report: akhbar's extractor against plain trafilatura, page by page.

    python bench/extraction_quality.py --eval-dir ../shared/eval [--site DIR] [--limit N] [--json FILE]

Three kinds of evidence, all read from disk (no server, no network):

* **make_site**: a site built by ``eval/tools/make_site.py`` from the labelled ANT articles
  (``topics/dev.tsv``, 1,606 pages; or ``--limit N`` articles). Each page is read from disk,
  decoded with the header the server would send, and compared with ``manifest.jsonl``: body
  token precision / recall / F1 per layout and encoding group, publication date right to the
  day. The page is extracted *without* the feed's date, so the date comes from the page alone.
* **real pages** (``eval/pages/``): each folder has its own kind of reference (cut-out body,
  paragraphs, must-include / must-exclude snippets, a body prefix, gold dates); every page gets
  the measure its reference allows.
* **seeds** (``eval/seeds/``): five texts as captured from real pages, boilerplate included,
  served as a plain page (one ``<p>`` per line). The report checks that the boilerplate
  (header lines, "read also" and the story after it, related lists, share lines) is gone and
  scores the article lines kept.

akhbar moves a leading dateline ("دمشق، سوريا (CNN) --") and credit lines ("(أ ف ب)") out of
``body`` into their own columns. References include them as article text, so akhbar is
scored on ``dateline + body + credit`` ("text"); body-only figures are printed too.

Plain trafilatura is ``trafilatura.extract(html, deduplicate=False)`` with every other
option at its default; its date is ``trafilatura.extract_metadata(html).date``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import trafilatura

from akhbar.transforms.arabic import tokens
from akhbar.transforms.extract import ExtractError, extract
from akhbar.transforms.http import decode_document

NOW = datetime(2026, 12, 31, tzinfo=timezone.utc)


def prf(ref: str, got: str) -> tuple[float, float, float]:
    r, g = Counter(tokens(ref)), Counter(tokens(got))
    overlap = sum((r & g).values())
    p = overlap / max(1, sum(g.values()))
    rc = overlap / max(1, sum(r.values()))
    return p, rc, (2 * p * rc / (p + rc) if p + rc else 0.0)


def run_akhbar(html: str, url: str) -> dict:
    t0 = time.perf_counter()
    try:
        ex = extract(html, url, now=NOW, min_words=1)
    except ExtractError as e:
        return {"text": "", "body": "", "date": None, "source": None, "error": e.reason,
                "language": None, "secs": time.perf_counter() - t0}
    # credits taken from the dateline ("(CNN) --") are already in it
    credit = [c for c in ex.credit if not (ex.dateline and c in ex.dateline)]
    text = "\n".join(x for x in (ex.dateline, ex.body, *credit) if x)
    return {"text": text, "body": ex.body, "date": ex.published_local.date().isoformat() if ex.published_local else None,
            "source": ex.published_source, "language": ex.language, "credit": ex.credit, "dateline": ex.dateline,
            "title": ex.title, "secs": time.perf_counter() - t0}


def run_plain(html: str, url: str) -> dict:
    t0 = time.perf_counter()
    text = trafilatura.extract(html, url=url, deduplicate=False) or ""
    secs = time.perf_counter() - t0
    meta = trafilatura.extract_metadata(html, default_url=url)
    return {"text": text, "body": text, "date": (meta.date if meta is not None else None), "secs": secs}


# --------------------------------------------------------------------------------------
# make_site
# --------------------------------------------------------------------------------------
def make_site_report(ev: Path, site: Path | None, limit: int | None) -> dict:
    if site is None:
        site = Path(tempfile.mkdtemp(prefix="akhbar-xq-")) / "site"
        cmd = [sys.executable, str(ev / "tools" / "make_site.py"), "build",
               "--articles", str(ev / "articles" / "ant_multisource_v2.1.jsonl.gz"), "--out", str(site),
               "--base-url", "http://127.0.0.1:8765"]
        cmd += ["--limit", str(limit)] if limit else ["--ids", str(ev / "topics" / "dev.tsv")]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    headers = json.loads((site / "_headers.json").read_text())
    groups: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for line in open(site / "manifest.jsonl", encoding="utf-8"):
        m = json.loads(line)
        path = "/" + m["url"].split("/", 3)[3]
        raw = (site / path.lstrip("/")).read_bytes()
        html, _ = decode_document(raw, headers.get(path))
        gold = datetime.fromisoformat(m["published"]).astimezone(timezone.utc).date().isoformat()
        a, t = run_akhbar(html, m["url"]), run_plain(html, m["url"])
        for key in (f"{m['layout']}/{m['encoding']}", "all"):
            g = groups[key]
            g["akhbar_text"].append(prf(m["body"], a["text"]))
            g["akhbar_body"].append(prf(m["body"], a["body"]))
            g["plain"].append(prf(m["body"], t["text"]))
            g["akhbar_date"].append(a["date"] == gold)
            g["plain_date"].append(t["date"] == gold)
            g["akhbar_secs"].append(a["secs"])
            g["plain_secs"].append(t["secs"])
    out = {}
    for key, g in sorted(groups.items()):
        n = len(g["plain"])
        mean = lambda rows, i: round(sum(r[i] for r in rows) / n, 4)  # noqa: E731
        out[key] = {
            "pages": n,
            "akhbar": {"P": mean(g["akhbar_text"], 0), "R": mean(g["akhbar_text"], 1), "F1": mean(g["akhbar_text"], 2),
                       "body_F1": mean(g["akhbar_body"], 2), "date": round(sum(g["akhbar_date"]) / n, 4),
                       "ms_per_page": round(1000 * sum(g["akhbar_secs"]) / n, 1)},
            "plain": {"P": mean(g["plain"], 0), "R": mean(g["plain"], 1), "F1": mean(g["plain"], 2),
                      "date": round(sum(g["plain_date"]) / n, 4),
                      "ms_per_page": round(1000 * sum(g["plain_secs"]) / n, 1)},
        }
    return out


# --------------------------------------------------------------------------------------
# real pages: one loader per reference format
# --------------------------------------------------------------------------------------
def _gold_day(value: str) -> str:
    """The day of a reference date, ISO: the crawl wrote most as ISO 8601, a few as dd/mm/yyyy."""
    if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value.strip()):
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return value[:10]


def _tag(text: str, name: str) -> str:
    m = re.search(rf"<{name}>\s*(.*?)\s*</{name}>", text, re.S)
    return m.group(1) if m else ""


def real_pages(ev: Path):
    """Yield dicts: group, id, html, url, and some of ref_text / with / without / prefix / gold_date / lang."""
    pages = ev / "pages"
    d = pages / "antcrawler_jawharafm"
    for txt in sorted(d.glob("*.txt")):
        ref = txt.read_text(encoding="utf-8")
        html, _ = decode_document(txt.with_suffix(".html").read_bytes(), None)
        yield {"group": d.name, "id": txt.stem, "html": html, "url": _tag(ref, "URL"), "ref_text": _tag(ref, "TEXT"),
               "gold_date": _gold_day(_tag(ref, "TIME"))}
    d = pages / "newspaper4k_arabic"
    meta = json.loads((d / "metadata_arabic_article.json").read_text(encoding="utf-8"))
    yield {"group": d.name, "id": "html_arabic_article", "url": meta["url"],
           "html": decode_document((d / "html_arabic_article.html").read_bytes(), None)[0],
           "ref_text": (d / "txt_arabic_article.txt").read_text(encoding="utf-8")}
    d = pages / "fundus_lbcgroup"
    info = json.loads((d / "meta.info").read_text(encoding="utf-8"))
    exp = json.loads((d / "LBCGroup.json").read_text(encoding="utf-8"))["V1"]
    for name, m in info.items():
        paras = [p for s in exp["body"]["sections"] for p in s["headline"] + s["paragraphs"]]
        yield {"group": d.name, "id": name.split(".")[0], "url": m["url"],
               "html": decode_document(gzip.decompress((d / name).read_bytes()), None)[0],
               "ref_text": "\n".join(exp["body"]["summary"] + paras), "gold_date": exp["publishing_date"][:10]}
    d = pages / "trafilatura_assabah"
    for url, m in json.loads((d / "evaldata_entry.json").read_text(encoding="utf-8")).items():
        yield {"group": d.name, "id": m["file"].removesuffix(".html"), "url": url,
               "html": decode_document((d / m["file"]).read_bytes(), None)[0], "with": m["with"],
               "without": m["without"]}
    d = pages / "goose3_cnn_arabic"
    g = json.loads((d / "test_cnn_arabic.json").read_text(encoding="utf-8"))
    yield {"group": d.name, "id": "test_cnn_arabic", "url": g["url"],
           "html": decode_document((d / "test_cnn_arabic.html").read_bytes(), None)[0],
           "prefix": g["expected"]["cleaned_text"]}
    d = pages / "htmldate_mediacloud2020_arabic"
    for url, m in json.loads((d / "gold_dates_arabic_subset.json").read_text(encoding="utf-8")).items():
        yield {"group": d.name, "id": m["file"].removesuffix(".html"), "url": url,
               "html": decode_document((d / m["file"]).read_bytes(), None)[0], "gold_date": m["date"],
               "lang": "fa" if m["html_lang"].startswith("fa") else "ar"}


def score_real(page: dict, res: dict) -> dict:
    s: dict = {}
    if "ref_text" in page:
        s["P"], s["R"], s["F1"] = (round(x, 4) for x in prf(page["ref_text"], res["text"]))
        s["score"] = s["F1"]
    if "with" in page:
        hits = sum(w in res["text"] for w in page["with"]) + sum(w not in res["text"] for w in page["without"])
        s["snippets"] = f"{hits}/{len(page['with']) + len(page['without'])}"
        s["score"] = round(hits / (len(page["with"]) + len(page["without"])), 4)
    if "prefix" in page:
        # the 149-character reference is a prefix: token recall of it, and whether the text starts with it
        s["R"] = round(prf(page["prefix"], res["text"])[1], 4)
        s["starts_with_prefix"] = " ".join(tokens(res["text"])).startswith(" ".join(tokens(page["prefix"])[:-1]))
        s["score"] = s["R"]
    if page.get("gold_date"):
        s["date_ok"] = res["date"] == page["gold_date"]
        s["date"] = res["date"]
    if "lang" in page and "language" in res:
        s["language"] = res["language"]
        s["language_ok"] = res["language"] == page["lang"]
    return s


# --------------------------------------------------------------------------------------
# seeds: served as captured, one <p> per line
# --------------------------------------------------------------------------------------
# Lines of each seed that are page furniture rather than the article (1-based, inclusive
# ranges of the seed file), judged by reading the seeds. Everything else is article text.
SEED_BOILERPLATE = {
    "001": [(24, 61)],   # "إقرأ أيضاً:" + the next story, then the "مقالات مشابهة" list
    "004": [(1, 10), (33, 33)],  # please wait, logo, site name, headline, date line, image; share line
}
SEED_TITLE = {"004": 6}  # the headline line, given to the page as its <title>
SEED_JUNK = ("إقرأ أيضاً", "مقالات مشابهة", "مشاركة عبر", "الرجاء الانتظار", "Main Logo", "Article Image",
             "تهديدات الحلف ومدى لياقة", "«الناتو» على استعداد للرد")


def seed_pages(ev: Path):
    for f in sorted((ev / "seeds").glob("*.txt")):
        key = f.name[:3]
        lines = f.read_text(encoding="utf-8").split("\n")
        drop = {i for a, b in SEED_BOILERPLATE.get(key, []) for i in range(a, b + 1)}
        ref = "\n".join(ln for i, ln in enumerate(lines, 1) if i not in drop and ln.strip())
        title = lines[SEED_TITLE[key] - 1].strip() if key in SEED_TITLE else ""
        esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;")  # noqa: E731
        html = (f"<html lang=\"ar\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title></head><body>"
                + "".join(f"<p>{esc(ln.strip())}</p>" for ln in lines if ln.strip()) + "</body></html>")
        yield {"group": "seeds", "id": f.stem, "html": html, "url": f"http://127.0.0.1/seeds/{f.stem}.html",
               "ref_text": ref, "junk": [j for j in SEED_JUNK if j in f.read_text(encoding="utf-8")]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True, help="path to shared/eval")
    ap.add_argument("--site", type=Path, help="an already built make_site folder (default: build one)")
    ap.add_argument("--limit", type=int, help="build the site from the first N articles instead of topics/dev.tsv")
    ap.add_argument("--skip-site", action="store_true", help="real pages and seeds only")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args(argv)
    ev = Path(args.eval_dir)
    report: dict = {"real_pages": [], "seeds": []}

    print("== real pages (akhbar scored on dateline+body+credit; plain = trafilatura.extract defaults)")
    print(f"{'page':52} {'akhbar':>8} {'plain':>8}  date a/p   notes")
    for page in real_pages(ev):
        a, t = run_akhbar(page["html"], page["url"]), run_plain(page["html"], page["url"])
        sa, st = score_real(page, a), score_real(page, t)
        row = {"group": page["group"], "id": page["id"], "akhbar": sa, "plain": st,
               "akhbar_date_source": a.get("source"), "credit": a.get("credit"), "dateline": a.get("dateline")}
        report["real_pages"].append(row)
        fmt = lambda s: f"{s['score']:.4f}" if "score" in s else "-"  # noqa: E731
        dates = f"{'ok' if sa.get('date_ok') else 'NO'}/{'ok' if st.get('date_ok') else 'NO'}" if "date_ok" in sa else "-"
        notes = " ".join(f"{k}={v}" for k, v in (("lang", sa.get("language")), ("src", a.get("source")),
                                                 ("credit", a.get("credit")), ("dateline", a.get("dateline"))) if v)
        print(f"{page['group'][:24] + '/' + page['id'][:27]:52} {fmt(sa):>8} {fmt(st):>8}  {dates:9} {notes}")
    scored = [r for r in report["real_pages"] if "score" in r["akhbar"]]
    mean_a = sum(r["akhbar"]["score"] for r in scored) / len(scored)
    mean_p = sum(r["plain"]["score"] for r in scored) / len(scored)
    worse = [r["id"] for r in scored if r["akhbar"]["score"] < r["plain"]["score"]]
    dated = [r for r in report["real_pages"] if "date_ok" in r["akhbar"]]
    report["real_summary"] = {
        "pages_scored": len(scored), "mean_akhbar": round(mean_a, 4), "mean_plain": round(mean_p, 4),
        "pages_worse_than_plain": worse,
        "dates_akhbar": f"{sum(r['akhbar']['date_ok'] for r in dated)}/{len(dated)}",
        "dates_plain": f"{sum(r['plain']['date_ok'] for r in dated)}/{len(dated)}",
    }
    print(json.dumps(report["real_summary"], ensure_ascii=False))

    print("\n== seeds (served as captured, one <p> per line)")
    for page in seed_pages(ev):
        a, t = run_akhbar(page["html"], page["url"]), run_plain(page["html"], page["url"])
        sa, st = score_real(page, a), score_real(page, t)
        left_a = [j for j in page["junk"] if j in a["text"]]
        left_p = [j for j in page["junk"] if j in t["text"]]
        report["seeds"].append({"id": page["id"], "akhbar": sa, "plain": st, "junk_left_akhbar": left_a,
                                "junk_left_plain": left_p, "credit": a.get("credit"), "dateline": a.get("dateline")})
        print(f"{page['id']:24} F1 akhbar {sa['F1']:.4f} plain {st['F1']:.4f}  boilerplate left: akhbar {left_a or 'none'}"
              f" plain {left_p or 'none'}  credit={a.get('credit')} dateline={a.get('dateline')}")

    if not args.skip_site:
        print("\n== make_site (page alone, no feed date)")
        report["make_site"] = make_site_report(ev, args.site, args.limit)
        print(f"{'group':24} {'pages':>5}  {'akhbar P/R/F1 (body F1)':34} {'date':>6}  {'plain P/R/F1':24} {'date':>6}  ms/page a/p")
        for key, r in report["make_site"].items():
            a, p = r["akhbar"], r["plain"]
            print(f"{key:24} {r['pages']:5}  {a['P']:.4f}/{a['R']:.4f}/{a['F1']:.4f} ({a['body_F1']:.4f})"
                  f"       {a['date']:6.2%}  {p['P']:.4f}/{p['R']:.4f}/{p['F1']:.4f}   {p['date']:6.2%}"
                  f"  {a['ms_per_page']}/{p['ms_per_page']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
