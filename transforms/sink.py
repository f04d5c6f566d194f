"""Writing hive-partitioned Parquet atomically and idempotently.

Rows are grouped by partition; each group is sorted and written in files of at most
``max_rows_per_file`` rows, named from the run id, the chunk number and a digest of the rows'
ids. A retried bundle therefore rewrites the same names with the same content instead of adding
a second copy, and :func:`akhbar.transforms.store.write_atomic` makes each file visible whole
or not at all.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from akhbar.schemas.arrow import (
    ARTICLES_SCHEMA,
    DEAD_LETTER_SCHEMA,
    article_row,
    dead_letter_row,
    partition_date,
)
from akhbar.schemas.records import Article, DeadLetter
from akhbar.transforms import store

DEFAULT_MAX_ROWS = 100_000


def part_name(run_id: str, chunk: int, ids: list[str]) -> str:
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return f"part-{run_id}-{chunk:05d}-{digest}.parquet"


def write_partition(folder: str, rows: list[dict], schema: pa.Schema, run_id: str, id_column: str,
                    max_rows: int = DEFAULT_MAX_ROWS) -> list[tuple[str, int]]:
    """Write ``rows`` (sorted by ``id_column``) under ``folder``; return [(path, rows)]."""
    rows = sorted(rows, key=lambda r: (r[id_column] or "", str(r.get("time") or "")))
    written = []
    for chunk, start in enumerate(range(0, len(rows), max_rows)):
        part = rows[start:start + max_rows]
        path = store.join(folder, part_name(run_id, chunk, [str(r[id_column]) for r in part]))
        store.write_atomic(path, store.table_bytes(pa.Table.from_pylist(part, schema=schema)))
        written.append((path, len(part)))
    return written


class _WriteGroups(beam.DoFn):
    def __init__(self, root: str, schema: pa.Schema, run_id: str, id_column: str, to_row: Callable,
                 max_rows: int, counter: str):
        self.root = root
        self.schema = schema
        self.run_id = run_id
        self.id_column = id_column
        self.to_row = to_row
        self.max_rows = max_rows
        self.counter = counter

    def process(self, element):
        partition, records = element
        folder = store.join(self.root, *partition)
        written = write_partition(folder, [self.to_row(r) for r in records], self.schema, self.run_id,
                                  self.id_column, self.max_rows)
        for path, n in written:
            Metrics.counter("akhbar", f"write.{self.counter}_rows").inc(n)
            Metrics.counter("akhbar", f"write.{self.counter}_files").inc()
            yield path, n


def _article_partition(a: Article) -> tuple[str, ...]:
    return (f"dt={partition_date(a).isoformat()}", f"source={a.source_id}")


def _dead_partition(d: DeadLetter) -> tuple[str, ...]:
    return (f"dt={d.time.date().isoformat()}",)


class WritePartitioned(beam.PTransform):
    """Records → ``ROOT/<partition folders>/part-RUN-NNNNN-DIGEST.parquet``, one group per partition."""

    def __init__(self, root: str, schema: pa.Schema, partition: Callable, to_row: Callable, id_column: str,
                 run_id: str, max_rows: int, counter: str):
        super().__init__()
        self.root = root
        self.partition = partition
        self.write = _WriteGroups(root, schema, run_id, id_column, to_row, max_rows, counter)

    def expand(self, records):
        partition = self.partition
        return (
            records
            | "ByPartition" >> beam.Map(lambda r: (partition(r), r))
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(self.write)
        )


class WriteArticles(WritePartitioned):
    """Articles → ``OUTPUT/articles/dt=YYYY-MM-DD/source=ID/part-RUN-NNNNN-DIGEST.parquet``."""

    def __init__(self, output: str, run_id: str, max_rows: int = DEFAULT_MAX_ROWS):
        super().__init__(store.join(output, "articles"), ARTICLES_SCHEMA, _article_partition, article_row,
                         "article_id", run_id, max_rows, "articles")


class WriteDeadLetters(WritePartitioned):
    """Dead letters → ``OUTPUT/dead_letter/dt=YYYY-MM-DD/part-RUN-NNNNN-DIGEST.parquet``."""

    def __init__(self, output: str, run_id: str, max_rows: int = DEFAULT_MAX_ROWS):
        super().__init__(store.join(output, "dead_letter"), DEAD_LETTER_SCHEMA, _dead_partition, dead_letter_row,
                         "url", run_id, max_rows, "dead_letters")
