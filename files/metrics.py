"""Prometheus counters of the files app, per object-store backend, present at zero from start-up.

metrics.UPLOADS.labels(backend="s3").inc()
"""

from __future__ import annotations

from prometheus_client import Counter

BACKEND_NAMES = ("local", "s3")
OPERATIONS = ("upload", "download", "delete", "complete", "cleanup")

UPLOADS = Counter(
    "persistence_files_uploads", "Files stored (upload or completed direct upload).", ["backend"]
)
DOWNLOADS = Counter("persistence_files_downloads", "File downloads served or redirected.", ["backend"])
UPLOADED_BYTES = Counter("persistence_files_uploaded_bytes", "Bytes of files stored.", ["backend"])
DOWNLOADED_BYTES = Counter(
    "persistence_files_downloaded_bytes", "Bytes served by the service itself (local store).", ["backend"]
)
ERRORS = Counter("persistence_files_errors", "Object-store operations that failed.", ["backend", "operation"])
DELETED = Counter(
    "persistence_files_deleted", "Files deleted (by request, session delete or sweep).", ["backend"]
)


def initialise() -> None:
    for backend in BACKEND_NAMES:
        for metric in (UPLOADS, DOWNLOADS, UPLOADED_BYTES, DOWNLOADED_BYTES, DELETED):
            metric.labels(backend=backend)
        for operation in OPERATIONS:
            ERRORS.labels(backend=backend, operation=operation)
