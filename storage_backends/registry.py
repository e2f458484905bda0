"""Which storage backend serves each collection, from ``settings.STORAGE_BACKENDS``.

STORAGE_BACKENDS = {"translation_tasks": "storage_backends.sql.SQLBackend", ...}
backend("translation_tasks").write("translation_tasks", records)
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from storage_backends.base import StorageBackend


@functools.cache
def _instance(dotted_path: str) -> StorageBackend:
    try:
        cls = import_string(dotted_path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS names {dotted_path!r}, which cannot be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, StorageBackend)):
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS names {dotted_path!r}, which is not a StorageBackend subclass"
        )
    return cls()


def backend(collection: str) -> StorageBackend:
    """The backend serving ``collection``; ImproperlyConfigured (naming the setting) if none does."""
    try:
        dotted_path = settings.STORAGE_BACKENDS[collection]
    except KeyError:
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS has no backend for the collection {collection!r}"
        ) from None
    return _instance(dotted_path)


def enabled_backends() -> dict[str, str]:
    """collection -> backend class path, for /api/v1/system/config."""
    return dict(settings.STORAGE_BACKENDS)
