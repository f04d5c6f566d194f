"""Record types passed between pipeline steps.

Plain frozen dataclasses: cheap to pickle between Beam workers, explicit about every field.
The Arrow schemas written to Parquet live next door in :mod:`akhbar.schemas.arrow`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Stages that can emit a dead letter, in pipeline order.
STAGES = ("config", "poll", "parse_feed", "fetch", "extract", "dedup", "classify", "write")


@dataclass(frozen=True)
class Source:
    """One entry of the sources file (validated)."""

    id: str
    feeds: tuple[str, ...]
    name: str | None = None
    language: str = "ar"
    country: str | None = None
    poll_interval_s: int = 900
    enabled: bool = True
    max_articles_per_poll: int | None = None
    min_interval_s: float | None = None  # politeness overrides; None = the run's defaults
    max_connections: int | None = None
    obey_robots: bool = True


@dataclass(frozen=True)
class Candidate:
    """A feed entry that points at an article page we may fetch."""

    source_id: str
    feed_url: str
    link: str  # as it appeared in the feed
    url: str  # canonical
    article_id: str
    feed_title: str | None = None
    feed_summary: str | None = None
    feed_published: datetime | None = None


@dataclass(frozen=True)
class Page:
    """A fetched article page: the candidate plus the decoded HTML."""

    candidate: Candidate
    final_url: str
    status: int
    content_type: str | None
    html: str
    encoding: str
    fetched_at: datetime


@dataclass(frozen=True)
class Article:
    """One output row (schema v1 plus the product's own columns)."""

    article_id: str
    url: str
    source_id: str
    title: str
    body: str
    published_at: datetime | None
    fetched_at: datetime
    language: str
    content_hash: str
    duplicate_of: str | None = None
    topics: tuple[str, ...] = ()
    nato_score: float = 0.0
    ukraine_score: float = 0.0
    # product extensions (nullable, documented in the data dictionary)
    feed_url: str | None = None
    published_source: str | None = None
    declared_language: str | None = None
    encoding: str | None = None
    evidence: tuple[str, ...] = ()
    run_id: str | None = None
    credit: tuple[str, ...] = ()  # agencies / sources credited ("أ ف ب", "رويترز"), as written
    dateline: str | None = None  # the dateline that opened the text ("دمشق، سوريا (CNN) --")
    # matching keys, not written to the articles table: MinHash signature and the sorted unique
    # uint32 hashes of the body's shingles it was computed from (numpy array; None once used)
    signature: bytes = field(default=b"", repr=False, compare=False)
    shingles: Any = field(default=None, repr=False, compare=False)

    def replace(self, **changes) -> "Article":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DeadLetter:
    """A failed item: what, where it failed and why (``reason`` is a stable code)."""

    url: str | None
    source_id: str | None
    stage: str
    reason: str
    message: str
    time: datetime
    detail: str | None = None  # stack trace or response excerpt
    feed_url: str | None = None
    run_id: str | None = None
