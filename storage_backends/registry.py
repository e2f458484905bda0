"""Which storage backend serves each collection, from ``settings.STORAGE_BACKENDS``, checked at
start-up against the collections the apps declare (storage_backends.catalog).

An entry is a dotted class path, or a dict naming the class and the keyword arguments it is built
with; one instance serves every collection routed to the same class and options:

STORAGE_BACKENDS = {
    "translation_sessions": "storage_backends.sql.SQLBackend",
    "translation_tasks": {"BACKEND": "storage_backends.sql.SQLBackend", "OPTIONS": {"database": "tasks"}},
}
backend("translation_tasks").write("translation_tasks", records)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from storage_backends import catalog
from storage_backends.base import StorageBackend

#: (dotted path, sorted options): what one backend instance is built from.
Route = tuple[str, tuple[tuple[str, Any], ...]]


def parse_route(collection: str, entry: Any) -> Route:
    """The (class path, options) of one ``STORAGE_BACKENDS`` entry; ImproperlyConfigured if malformed."""
    if isinstance(entry, str):
        return entry, ()
    if (
        isinstance(entry, Mapping)
        and isinstance(entry.get("BACKEND"), str)
        and set(entry) <= {"BACKEND", "OPTIONS"}
    ):
        options = entry.get("OPTIONS") or {}
        if isinstance(options, Mapping) and all(isinstance(key, str) for key in options):
            return entry["BACKEND"], tuple(sorted(options.items()))
    raise ImproperlyConfigured(
        f"STORAGE_BACKENDS[{collection!r}] must be a dotted class path or "
        f'{{"BACKEND": "<dotted class path>", "OPTIONS": {{...}}}}, not {entry!r}'
    )


@functools.cache
def _instance(dotted_path: str, options: tuple[tuple[str, Any], ...] = ()) -> StorageBackend:
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
    try:
        instance: StorageBackend = cls(**dict(options))
    except TypeError as exc:  # an option the class does not take
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS names {dotted_path!r} with OPTIONS {dict(options)!r}, which it refuses: {exc}"
        ) from exc
    return instance


def backend(collection: str) -> StorageBackend:
    """The backend serving ``collection``; ImproperlyConfigured (naming the setting) if none does."""
    try:
        entry = settings.STORAGE_BACKENDS[collection]
    except KeyError:
        raise ImproperlyConfigured(
            f"STORAGE_BACKENDS has no backend for the collection {collection!r}"
        ) from None
    return _instance(*parse_route(collection, entry))


def backend_path(collection: str) -> str | None:
    """The dotted class path routed for ``collection`` (either form of entry), None if none."""
    entry = getattr(settings, "STORAGE_BACKENDS", {}).get(collection)
    return None if entry is None else parse_route(collection, entry)[0]


def validate_routes(routes: Mapping[str, Any]) -> None:
    """Refuse (ImproperlyConfigured) a routing table naming a collection no app declares, a
    buffered collection without a backend, a backend that cannot be imported, or OPTIONS its class
    refuses (an entry with OPTIONS is built here), or parents the write buffers cannot keep
    (``catalog.check_buffered_tree``). Run at start-up (system.apps, once every app has
    declared its collections)."""
    catalog.check_buffered_tree()
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
    for collection, entry in routes.items():
        dotted_path, options = parse_route(collection, entry)
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
        if options:
            try:
                _instance(dotted_path, options)
            except ImproperlyConfigured as exc:
                raise ImproperlyConfigured(f"STORAGE_BACKENDS[{collection!r}]: {exc}") from exc
