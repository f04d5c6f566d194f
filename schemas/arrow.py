"""The Arrow schemas of everything akhbar writes, with their versions.

One explicit schema, never inferred from data. ``ARTICLES_COLUMNS`` is the data dictionary: a test
checks that ``docs/schema.md`` lists exactly these columns, types and meanings.

Versioning: ``MAJOR.MINOR``. Adding a nullable column is a minor bump (old files stay readable
with the current schema); renaming, removing or retyping a column is a major bump.
"""
from __future__ import annotations

import dataclasses
from datetime import date

import pyarrow as pa

from akhbar.schemas.records import Article, DeadLetter

SCHEMA_VERSION = "1.1"
_TS = pa.timestamp("us", tz="UTC")

# (name, type, nullable, meaning)
ARTICLES_COLUMNS: list[tuple[str, pa.DataType, bool, str]] = [
    ("article_id", pa.string(), False, "Stable id: first 32 hex digits of SHA-256 of the canonical URL."),
    ("url", pa.string(), False, "Canonical URL (tracking parameters, fragment other than `#!…` and default port removed)."),
    ("source_id", pa.string(), False, "Id of the source in the sources file."),
    ("title", pa.string(), False, "Headline (page metadata, else the feed entry title)."),
    ("body", pa.string(), False, "Article text as published, paragraphs separated by newlines."),
    ("published_at", _TS, True, "Publication time in UTC, when a plausible one was found."),
    ("fetched_at", _TS, False, "When the page was fetched (UTC)."),
    ("language", pa.string(), False, "ISO 639-1 language detected on the body (und when unknown)."),
    ("content_hash", pa.string(), False, "SHA-256 (hex) of the normalized body; equal hashes are exact duplicates."),
    ("duplicate_of", pa.string(), True, "article_id of the first-seen copy when this article is a near-duplicate."),
    ("topics", pa.list_(pa.string()), False, "Topics the story is about: values from {nato, ukraine}."),
    ("nato_score", pa.float32(), False, "Classifier score for NATO in 0..1."),
    ("ukraine_score", pa.float32(), False, "Classifier score for Ukraine in 0..1."),
    ("schema_version", pa.string(), False, "Version of this schema the row was written with."),
    ("feed_url", pa.string(), True, "Feed the article was found in."),
    ("published_source", pa.string(), True, "Where published_at came from: feed, metadata, url (a date in the URL path), visible_text or hijri "
     "(a Hijri date in the text, converted)."),
    ("declared_language", pa.string(), True, "Language the page declares (html lang), if any."),
    ("encoding", pa.string(), True, "Character encoding the page was decoded with."),
    ("evidence", pa.list_(pa.string()), False, "Classifier evidence: 'topic:term' for each matched lexicon term."),
    ("run_id", pa.string(), True, "Id of the run that wrote the row."),
    ("credit", pa.list_(pa.string()), True, "Agencies and sources the article credits (\"أ ف ب\", \"رويترز\", "
     "\"موزاييك أف.أم\"), one item each, as written; taken out of the body (since 1.1; null when none)."),
    ("dateline", pa.string(), True, "Dateline that opened the article (\"دمشق، سوريا (CNN) --\"), taken out of "
     "the body (since 1.1)."),
]
ARTICLES_SCHEMA = pa.schema(
    [pa.field(n, t, nullable=nl) for n, t, nl, _ in ARTICLES_COLUMNS],
    metadata={b"akhbar.schema": b"articles", b"akhbar.schema_version": SCHEMA_VERSION.encode()},
)

DEAD_LETTER_COLUMNS: list[tuple[str, pa.DataType, bool, str]] = [
    ("url", pa.string(), True, "URL of the failed item (article page or feed)."),
    ("source_id", pa.string(), True, "Source the item belongs to."),
    ("stage", pa.string(), False, "Pipeline stage that failed: poll, parse_feed, fetch, extract, dedup, classify, write."),
    ("reason", pa.string(), False, "Stable reason code, e.g. http_404, timeout, empty_body."),
    ("message", pa.string(), False, "Human-readable explanation."),
    ("time", _TS, False, "When the failure happened (UTC)."),
    ("detail", pa.string(), True, "Stack trace or response excerpt."),
    ("feed_url", pa.string(), True, "Feed the item came from."),
    ("run_id", pa.string(), True, "Id of the run."),
    ("schema_version", pa.string(), False, "Schema version."),
]
DEAD_LETTER_SCHEMA = pa.schema(
    [pa.field(n, t, nullable=nl) for n, t, nl, _ in DEAD_LETTER_COLUMNS],
    metadata={b"akhbar.schema": b"dead_letter", b"akhbar.schema_version": SCHEMA_VERSION.encode()},
)


def article_row(a: Article) -> dict:
    """The Parquet row for an article (drops in-pipeline fields, adds the schema version)."""
    return {
        "article_id": a.article_id,
        "url": a.url,
        "source_id": a.source_id,
        "title": a.title,
        "body": a.body,
        "published_at": a.published_at,
        "fetched_at": a.fetched_at,
        "language": a.language,
        "content_hash": a.content_hash,
        "duplicate_of": a.duplicate_of,
        "topics": list(a.topics),
        "nato_score": float(a.nato_score),
        "ukraine_score": float(a.ukraine_score),
        "schema_version": SCHEMA_VERSION,
        "feed_url": a.feed_url,
        "published_source": a.published_source,
        "declared_language": a.declared_language,
        "encoding": a.encoding,
        "evidence": list(a.evidence),
        "run_id": a.run_id,
        "credit": list(a.credit) or None,
        "dateline": a.dateline,
    }


def dead_letter_row(d: DeadLetter) -> dict:
    row = dataclasses.asdict(d)
    row["schema_version"] = SCHEMA_VERSION
    return row


def partition_date(a: Article) -> date:
    """The ``dt`` partition of an article: the UTC day it was fetched (ingestion date).

    Ingestion date rather than publication date keeps old partitions immutable (a run only
    ever adds to today's partition), which makes compaction and incremental reads safe.
    ``published_at`` is a column for filtering by publication time.
    """
    return a.fetched_at.date()


def _type_name(t: pa.DataType) -> str:
    return str(t).replace("timestamp[us, tz=UTC]", "timestamp[us, UTC]").replace("list<item: string>", "list<string>")


def data_dictionary_markdown() -> str:
    """The data dictionary of every dataset akhbar writes (``docs/schema.md``)."""
    out = [
        "# Data dictionary",
        "",
        "Generated from `schemas/arrow.py` by `python -m akhbar.schemas.arrow > docs/schema.md`;",
        "a test fails when this file and the code disagree.",
        "",
        f"Schema version: **{SCHEMA_VERSION}**. Adding a nullable column is a minor version; files written",
        "with an older minor version read fine with the current schema.",
        "",
        "## Schema versions",
        "",
        "- Every row carries the version it was written with (`schema_version`), and every file the",
        "  same in its Parquet metadata (`akhbar.schema_version`).",
        "- **Minor** (`1.0` → `1.1`): new columns, always nullable, appended after the existing ones.",
        "  Existing columns never change name, type, nullability or meaning. Files of older minor",
        "  versions stay in place and are not rewritten; they simply lack the new columns.",
        "- **Major** (`1.x` → `2.0`): a column renamed, removed or retyped. Written to a new dataset",
        "  folder (e.g. `articles_v2/`), so one glob never mixes incompatible files.",
        "- Reading across minor versions: DuckDB `read_parquet('OUTPUT/articles/**/*.parquet',",
        "  hive_partitioning=true, union_by_name=true)` (without `union_by_name` DuckDB takes the",
        "  columns of the first file); pyarrow `ds.dataset('OUTPUT/articles', schema=…,",
        "  partitioning='hive')` with the newest schema (`akhbar.schemas.arrow.ARTICLES_SCHEMA` plus",
        "  the partition fields) — without `schema=` pyarrow takes one file's schema. Older rows read",
        "  the new columns as null.",
        "- `akhbar compact` merges files of different minor versions into the union of their columns",
        "  (older rows null in the new ones), keeping each row's `schema_version`.",
        "",
    ]
    for title, path, columns in (
        ("articles", "`articles/dt=YYYY-MM-DD/source=ID/part-*.parquet` (hive partitions: `dt` is the UTC "
         "fetch date, `source` the source id)", ARTICLES_COLUMNS),
        ("dead_letter", "`dead_letter/dt=YYYY-MM-DD/part-*.parquet`", DEAD_LETTER_COLUMNS),
    ):
        out += [f"## {title}", "", path, "", "| column | type | nullable | meaning |", "|---|---|---|---|"]
        out += [f"| `{n}` | {_type_name(t)} | {'yes' if nl else 'no'} | {m} |" for n, t, nl, m in columns]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(data_dictionary_markdown(), end="")
