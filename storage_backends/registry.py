"""Which storage backend serves each collection, from ``settings.STORAGE_BACKENDS``, checked at
start-up against the collections the apps declare (storage_backends.catalog).

STORAGE_BACKENDS = {"translation_tasks": "storage_backends.sql.SQLBackend", ...}
backend("translation_tasks").write("translation_tasks", records)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from storage_backends import catalog
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


def validate_routes(routes: Mapping[str, str]) -> None:
    """Refuse (ImproperlyConfigured) a routing table naming a collection no app declares, a
    buffered collection without a backend, or a backend that cannot be imported. Run at start-up
    (system.apps, once every app has declared its collections)."""
    declared = catalog.declared()
    unknown = sorted(set(routes) - set(declared))
    if unknown:
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS names the collection(s) {', '.join(map(repr, unknown))}, which no app "
            f"declares (declared: {', '.join(declared) or 'none'})"
        )
    missing = [name for name in catalog.buffered_collections() if name not in routes]
    if missing:
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS has no backend for the collection(s) {', '.join(map(repr, missing))}"
        )
    for collection, dotted_path in routes.items():
        try:
            cls = import_string(dotted_path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"STORAGE_BACKENDS[{collection!r}] names {dotted_path!r}, which cannot be imported: {exc}"
            ) from exc
        if not isinstance(cls, type):
            raise ImproperlyConfigured(
                f"STORAGE_BACKENDS[{collection!r}] names {dotted_path!r}, which is not a class"
            )


def enabled_backends() -> dict[str, str]:
    """collection -> backend class path, for /api/v1/system/config."""
    return dict(settings.STORAGE_BACKENDS)
