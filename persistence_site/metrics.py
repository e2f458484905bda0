"""The service's own Prometheus metrics (docs/api.md §6) and the scrape of all of them.

Every metric exists from start-up, at zero. With several processes (gunicorn workers, Celery on
the same host) prometheus_client's multiprocess mode is on: ``PROMETHEUS_MULTIPROC_DIR`` names a
directory where each process keeps its values in a memory-mapped file, and a scrape sums the
files (persistence_site.gunicorn_conf sets it up). The buffer size describes shared state, so it
is not kept per process at all: ``BufferSizeCollector`` asks the write buffer at scrape time.
A new per-process ``Gauge`` needs a ``multiprocess_mode`` (e.g. "livesum"); state shared between
processes belongs in a scrape-time collector like that one.

    from persistence_site import metrics
    metrics.FLUSH_TOTAL.labels(type="task").inc()
    body, content_type = metrics.exposition(request.headers.get("Accept"))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

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


class BufferSizeCollector:
    """``persistence_buffer_size{type}``: records waiting in the write buffer, read at scrape time;
    ``persistence_buffer_bytes`` (what ``BUFFER_CAPACITY_BYTES`` bounds) and
    ``persistence_buffer_retrying`` (records that failed a flush attempt and wait for the next).

    Asking the buffer store (one cheap count per collection) is right with any number of web and
    worker processes, where a per-process gauge would report each process's own view.
    """

    def collect(self) -> Iterator[Metric]:
        from storage_backends.buffer import ITEM_TYPE, get_write_buffer

        family = GaugeMetricFamily(
            "persistence_buffer_size", "Records accepted and not yet flushed, per type.", labels=["type"]
        )
        size = GaugeMetricFamily("persistence_buffer_bytes", "Bytes of record data in the write buffer.")
        retrying = GaugeMetricFamily(
            "persistence_buffer_retrying",
            "Buffered records that failed a flush attempt with an unknown error and wait to be retried.",
        )
        try:
            buffer = get_write_buffer()
            counts = buffer.counts()
            size.add_metric([], buffer.size_bytes())
            retrying.add_metric([], buffer.retrying_count())
        except Exception:  # a scrape must not fail because the buffer store is down; /health says so
            logger.warning("metrics: buffer store unavailable; buffer size not reported", exc_info=True)
        else:
            for collection, item_type in ITEM_TYPE.items():
                family.add_metric([item_type], counts.get(collection, 0))
            yield size
            yield retrying
        yield family


class _ProcessRegistry:
    """This process's default registry as one collector (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    """Everything a scrape shows: every process's metrics (or this process's) and the buffer size."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessRegistry())
    registry.register(BufferSizeCollector())
    return registry


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The scrape body and its content type: OpenMetrics when the scraper asks for it, else the
    Prometheus text format 0.0.4."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(scrape_registry()), content_type
