"""The service's own Prometheus metrics (API.md §6). Every one exists from start-up, at zero.

from persistence_site import metrics
metrics.FLUSH_TOTAL.labels(type="task").inc()
"""

from prometheus_client import Counter, Histogram

ITEM_TYPES = ("session", "task")

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
DATA_LOSS = Counter("persistence_data_loss", "Accepted records lost. Must stay 0.")

for _type in ITEM_TYPES:
    for _metric in (FLUSH_TOTAL, FLUSH_DURATION, FLUSHED_ITEMS, FLUSH_ERRORS, DEAD_LETTERS):
        _metric.labels(type=_type)
