"""The scrape of every metric (docs/api.md §6): this process's or, in multiprocess mode, every
process's (core.metrics defines them), plus the buffer size asked from the write buffer.

    from system import metrics
    body, content_type = metrics.exposition(request.headers.get("Accept"))
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from core.metrics import multiprocess_dir

logger = logging.getLogger(__name__)


class BufferSizeCollector:
    """``persistence_buffer_size{type}``: records waiting in the write buffer, read at scrape time;
    ``persistence_buffer_bytes`` (what ``BUFFER_CAPACITY_BYTES`` bounds) and
    ``persistence_buffer_retrying`` (records that failed a flush attempt and wait for the next).

    Asking the buffer store (one cheap count per collection) is right with any number of web and
    worker processes, where a per-process gauge would report each process's own view.
    """

    def collect(self) -> Iterator[Metric]:
        from storage_backends import catalog
        from storage_backends.buffer import get_write_buffer

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
            for collection in catalog.buffered_collections():
                item_type = catalog.item_type(collection)
                family.add_metric([item_type], counts.get(collection, 0))
            yield size
            yield retrying
        yield family


class _ProcessRegistry:
    """This process's default registry as one collector (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


class _StartedFilesCollector(MultiProcessCollector):
    """prometheus_client's multiprocess collector, leaving out files a starting process has created
    but not sized yet: ``MmapedDict`` opens its file (empty) before it truncates it to its initial
    size, and reading a file in between fails to unpack its header (a 500 from the scrape seen
    while gunicorn started its workers). Such a file holds no value yet."""

    def collect(self) -> Iterator[Metric]:
        files = [path for path in glob.glob(os.path.join(self._path, "*.db")) if _size(path) >= _HEADER_BYTES]
        return self.merge(files, accumulate=True)  # type: ignore[no-any-return]


#: A metrics file's header: the bytes used (4) and padding (4).
_HEADER_BYTES = 8


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:  # the process ended and its file was removed meanwhile
        return 0


def scrape_registry() -> CollectorRegistry:
    """Everything a scrape shows: every process's metrics (or this process's) and the buffer size."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        _StartedFilesCollector(registry, path=path)
    else:
        registry.register(_ProcessRegistry())
    registry.register(BufferSizeCollector())
    return registry


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The scrape body and its content type: OpenMetrics when the scraper asks for it, else the
    Prometheus text format 0.0.4."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(scrape_registry()), content_type
