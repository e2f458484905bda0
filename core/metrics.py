"""The service's own Prometheus metrics (docs/api.md §6): their definitions, which any layer updates.
The scrape of all of them (and the buffer size, asked at scrape time) is system.metrics.

Every metric exists from start-up, at zero. With several processes (gunicorn workers, Celery on
the same host) prometheus_client's multiprocess mode is on: ``PROMETHEUS_MULTIPROC_DIR`` names a
directory where each process keeps its values in a memory-mapped file, and a scrape sums the
files (persistence_site.gunicorn_conf sets it up). The buffer size describes shared state, so it
is not kept per process at all: ``BufferSizeCollector`` asks the write buffer at scrape time.
A new per-process ``Gauge`` needs a ``multiprocess_mode`` (e.g. "livesum"); state shared between
processes belongs in a scrape-time collector like that one.

    from core import metrics
    metrics.FLUSH_TOTAL.labels(type="task").inc()
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

ITEM_TYPES = ("session", "task", "audit_log")
#: The operations the storage backends count (labels of the storage metrics), made visible at zero.
STORAGE_OPERATION_NAMES = ("write", "read", "query", "delete")

FLUSH_TOTAL = Counter("persistence_flush", "Flushes of the write buffer that wrote to storage.", ["type"])
FLUSH_DURATION = Histogram(
    "persistence_flush_duration_seconds",
    "Time one flush of a collection took.",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FLUSHED_ITEMS = Counter("persistence_flushed_items", "Records written from the buffer to storage.", ["type"])
FLUSH_ERRORS = Counter("persistence_flush_errors", "Flushes that failed and were kept for retry.", ["type"])
STORAGE_OPERATIONS = Counter(
    "persistence_storage_operations", "Operations on storage backends.", ["backend", "operation"]
)
STORAGE_ERRORS = Counter(
    "persistence_storage_errors", "Failed operations on storage backends.", ["backend", "operation"]
)
DEAD_LETTERS = Counter("persistence_dead_letters", "Records moved to the dead-letter store.", ["type"])
FLUSH_RECORD_FAILURES = Counter(
    "persistence_flush_record_failures",
    "Flush attempts of one record that failed with an unknown error (the record stays buffered and is "
    "retried, then dead-lettered after FLUSH_MAX_ATTEMPTS).",
    ["type"],
)
FLUSH_CHUNK_SIZE = Gauge(
    "persistence_flush_chunk_size",
    "Records per flush transaction, adapted to how long the last ones took (500-5,000).",
    ["type"],
    multiprocess_mode="mostrecent",
)
DATA_LOSS = Counter("persistence_data_loss", "Accepted records lost. Must stay 0.")

for _type in ITEM_TYPES:
    for _metric in (
        FLUSH_TOTAL,
        FLUSH_DURATION,
        FLUSHED_ITEMS,
        FLUSH_ERRORS,
        DEAD_LETTERS,
        FLUSH_RECORD_FAILURES,
    ):
        _metric.labels(type=_type)


def initialise_backend_labels(backend_names: Iterable[str]) -> None:
    """Create the storage series of these backends at zero, so they are scraped before first use."""
    for backend in backend_names:
        for operation in STORAGE_OPERATION_NAMES:
            STORAGE_OPERATIONS.labels(backend=backend, operation=operation)
            STORAGE_ERRORS.labels(backend=backend, operation=operation)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when multiprocess mode is on, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
