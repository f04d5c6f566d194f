"""Writing hive-partitioned Parquet atomically and idempotently.

Rows are grouped by partition; each group is sorted and written in files of at most
``max_rows_per_file`` rows, named from the run id, the chunk number and a digest of the rows'
ids. A retried bundle therefore rewrites the same names with the same content instead of adding
a second copy, and :func:`akhbar.transforms.store.write_atomic` makes each file visible whole
or not at all.

Partition values come from data (source ids, dates), so they are validated before any path is
built (:func:`akhbar.transforms.store.partition_path`): an article whose values could not name a
folder safely inside the output root becomes a dead letter (stage ``write``, reason
``bad_partition``) instead of a file. Each writer also removes temporary files that killed runs
left in its tree more than an hour ago.

Given the run's :class:`~akhbar.transforms.outputlock.Fence`, every file is committed only while
the output's lock is still the run's: a run that lost it stops before its next commit
(:class:`~akhbar.transforms.outputlock.LeaseLost`).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import traceback
from datetime import datetime, timezone

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from akhbar.schemas.arrow import (
    ARTICLES_SCHEMA,
    DEAD_LETTER_SCHEMA,
    article_row,
    dead_letter_row,
    partition_date,
)
from akhbar.schemas.records import Article, DeadLetter
from akhbar.transforms import store, tally
from akhbar.transforms.outputlock import Fence, commit_guard

DEFAULT_MAX_ROWS = 100_000


def part_name(run_id: str, chunk: int, ids: list[str]) -> str:
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return f"part-{run_id}-{chunk:05d}-{digest}.parquet"


def write_partition(folder: str, rows: list[dict], schema: pa.Schema, run_id: str, id_column: str,
                    max_rows: int = DEFAULT_MAX_ROWS, fence: Fence | None = None) -> list[tuple[str, int]]:
    """Write ``rows`` (sorted by ``id_column``) under ``folder``; return [(path, rows)]. With a
    ``fence``, each file is committed only while the output's lock is still this run's."""
    rows = sorted(rows, key=lambda r: (r[id_column] or "", str(r.get("time") or "")))
    written = []
    for chunk, start in enumerate(range(0, len(rows), max_rows)):
        part = rows[start:start + max_rows]
        path = store.join(folder, part_name(run_id, chunk, [str(r[id_column]) for r in part]))
        store.write_atomic(path, store.table_bytes(pa.Table.from_pylist(part, schema=schema)),
                           **commit_guard(fence, path))
        written.append((path, len(part)))
    return written


# Declared, so that Beam need not infer it: its bytecode inference of this step took 0.2 s of
# every run's start (it follows the calls into the Parquet writing).
@beam.typehints.with_output_types(tuple[str, int])
class _WriteGroups(beam.DoFn):
    def __init__(self, root: str, schema: pa.Schema, run_id: str, id_column: str, to_row: Callable,
                 max_rows: int, counter: str, fence: Fence | None = None):
        self.root = root
        self.schema = schema
        self.run_id = run_id
        self.id_column = id_column
        self.to_row = to_row
        self.max_rows = max_rows
        self.counter = counter
        self.fence = fence

    def process(self, element):
        yield from self.write_group(element, self.run_id)

    def write_group(self, element, file_run_id: str):
        """Write one partition's records as files named after ``file_run_id``; yield (path, rows)."""
        started = time.thread_time()
        partition, records = element
        folder = store.partition_path(self.root, list(partition))
        written = write_partition(folder, [self.to_row(r) for r in records], self.schema, file_run_id,
                                  self.id_column, self.max_rows, self.fence)
        tally.count("write.cpu_us", round((time.thread_time() - started) * 1e6))
        for path, n in written:
            tally.count(f"write.{self.counter}_rows", n)
            tally.count(f"write.{self.counter}_files")
            yield path, n


def _article_partition(a: Article) -> tuple[tuple[str, str], ...]:
    return (("dt", partition_date(a).isoformat()), ("source", a.source_id))


def _dead_partition(d: DeadLetter) -> tuple[tuple[str, str], ...]:
    return (("dt", d.time.date().isoformat()),)


UNSAFE = "unsafe_partition"


class _KeyByPartition(beam.DoFn):
    """record → (partition, record); a record whose partition values are unsafe goes to
    the ``unsafe_partition`` output with the reason, never to a folder."""

    def __init__(self, partition: Callable):
        self.partition = partition

    def process(self, record):
        try:
            key = self.partition(record)
            store.partition_folders(list(key))
        except Exception as e:  # noqa: BLE001 - UnsafePartition, or a record without the values
            tally.count("write.unsafe_partition")
            yield pvalue.TaggedOutput(UNSAFE, (record, f"{type(e).__name__}: {e}", traceback.format_exc()))
            return
        yield key, record


def _unsafe_article_dead_letter(item, run_id: str) -> DeadLetter:
    a, message, detail = item
    source = getattr(a, "source_id", None)
    return DeadLetter(url=getattr(a, "url", None), source_id=source if isinstance(source, str) else None, stage="write", reason="bad_partition",
                      message=f"not written: {message}"[:2000], time=datetime.now(timezone.utc),
                      detail=detail[:20000], feed_url=getattr(a, "feed_url", None), run_id=run_id)


def _refuse_unsafe(item) -> None:
    record, message, _ = item
    raise store.UnsafePartition(f"{message} ({record!r:.200})")


class WritePartitioned(beam.PTransform):
    """Records → ``ROOT/<partition folders>/part-RUN-NNNNN-DIGEST.parquet``, one group per partition."""

    def __init__(self, root: str, schema: pa.Schema, partition: Callable, to_row: Callable, id_column: str,
                 run_id: str, max_rows: int, counter: str, fence: Fence | None = None):
        super().__init__()
        self.root = root
        self.run_id = run_id
        self.max_rows = max_rows
        self.partition = partition
        self.fence = fence
        self.write = _WriteGroups(root, schema, run_id, id_column, to_row, max_rows, counter, fence)

    def unsafe(self, bad):
        """What to do with records whose partition is unsafe: ``(record, message, trace)``."""
        return bad | "RefuseUnsafe" >> beam.Map(_refuse_unsafe)

    def expand(self, records):
        keyed = records | "ByPartition" >> beam.ParDo(_KeyByPartition(self.partition)).with_outputs(UNSAFE, main="ok")
        self.unsafe(keyed[UNSAFE])
        (
            records.pipeline
            | "Root" >> beam.Create([self.root])
            | "RemoveStaleTemporaries" >> beam.Map(store.remove_stale_temporaries)
        )
        return (
            keyed.ok
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(self.write)
        )


class WriteArticles(WritePartitioned):
    """Articles → ``OUTPUT/articles/dt=YYYY-MM-DD/source=ID/part-RUN-NNNNN-DIGEST.parquet``."""

    def __init__(self, output: str, run_id: str, max_rows: int = DEFAULT_MAX_ROWS, fence: Fence | None = None):
        super().__init__(store.join(output, "articles"), ARTICLES_SCHEMA, _article_partition, article_row,
                         "article_id", run_id, max_rows, "articles", fence)
        self.output = output

    def unsafe(self, bad):
        """Articles that cannot be placed safely become dead letters (stage write, bad_partition)."""
        run_id = self.run_id
        return (
            bad
            | "UnsafeToDeadLetters" >> beam.Map(_unsafe_article_dead_letter, run_id)
            | "WriteUnsafe" >> WriteDeadLetters(self.output, run_id, self.max_rows, self.fence)
        )


class WriteDeadLetters(WritePartitioned):
    """Dead letters → ``OUTPUT/dead_letter/dt=YYYY-MM-DD/part-RUN-NNNNN-DIGEST.parquet``."""

    def __init__(self, output: str, run_id: str, max_rows: int = DEFAULT_MAX_ROWS, fence: Fence | None = None):
        super().__init__(store.join(output, "dead_letter"), DEAD_LETTER_SCHEMA, _dead_partition, dead_letter_row,
                         "url", run_id, max_rows, "dead_letters", fence)
