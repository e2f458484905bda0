"""The collections the storage layer serves, as their apps declare them.

Each app declares its collections in its ``AppConfig.ready`` (translation: sessions and tasks;
audit: audit events; users: user sessions). The buffer, the flusher, the records codec and the
dead letters work from these declarations and never name an app; ``STORAGE_BACKENDS`` is checked
against them at start-up (``storage_backends.registry.validate_routes``).

    declare(Collection("translation_tasks", model="translation.Task", id_field="task_id",
                       item_type="task", parent="translation_sessions", parent_field="session_id"))
    spec("translation_tasks").model_class()        # -> translation.models.Task
    buffered_collections()                          # flush order: a parent before its children
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Collection:
    """One collection: where its records live and how the storage layer treats them.

    ``model``: the Django model (``"app_label.Model"``) of the SQL plugin, None for a collection
    served only by a plugin of its own (user sessions). ``item_type``: the ``type`` label of the
    buffer and flush metrics. ``parent``/``parent_field``: the collection each record references
    (stored first, deleted with it). ``keep_first``: append-only, the first accepted write of an
    id is kept. ``buffered``: writes go through the write buffer (202) and are flushed.
    ``schema``: the pydantic model of one record as the API accepts it, the one place its shape is
    written (its app derives validation, answers and OpenAPI components from it; a re-queued dead
    letter is checked against it before it is buffered again).
    """

    name: str
    model: str | None
    id_field: str
    item_type: str
    parent: str | None = None
    parent_field: str | None = None
    keep_first: bool = False
    buffered: bool = True
    schema: type[BaseModel] | None = None

    def model_class(self) -> type[models.Model]:
        if self.model is None:
            raise ImproperlyConfigured(f"The collection {self.name!r} has no model")
        model: type[models.Model] = apps.get_model(self.model)
        return model


_DECLARED: dict[str, Collection] = {}
#: ``buffered_collections()``'s answer, computed once per set of declarations (on the write path).
_ORDER: list[tuple[str, ...]] = []


def declare(collection: Collection) -> None:
    """Register ``collection`` (from an ``AppConfig.ready``); declaring it again the same is a no-op."""
    known = _DECLARED.get(collection.name)
    if known is not None and known != collection:
        raise ImproperlyConfigured(f"The collection {collection.name!r} is declared twice, differently")
    if collection.parent is not None and collection.parent_field is None:
        raise ImproperlyConfigured(f"The collection {collection.name!r} names a parent but no parent_field")
    _DECLARED[collection.name] = collection
    _ORDER.clear()


def spec(name: str) -> Collection:
    """The declaration of ``name``; ImproperlyConfigured when no app declares it."""
    try:
        return _DECLARED[name]
    except KeyError:
        known = ", ".join(sorted(_DECLARED)) or "none"
        raise ImproperlyConfigured(f"No app declares the collection {name!r} (declared: {known})") from None


def declared() -> dict[str, Collection]:
    """Every declared collection, by name, in declaration order."""
    return dict(_DECLARED)


def buffered_collections() -> tuple[str, ...]:
    """The buffered collections in flush order: each parent before its children, otherwise in
    declaration order (the order of INSTALLED_APPS)."""
    if not _ORDER:
        _ORDER.append(_flush_order())
    return _ORDER[0]


def _flush_order() -> tuple[str, ...]:
    order: list[str] = []

    def visit(name: str, seen: tuple[str, ...] = ()) -> None:
        if name in order:
            return
        if name in seen:
            raise ImproperlyConfigured(f"The collections' parents form a cycle: {' -> '.join((*seen, name))}")
        parent = _DECLARED[name].parent
        if parent is not None and parent in _DECLARED and _DECLARED[parent].buffered:
            visit(parent, (*seen, name))
        order.append(name)

    for name, collection in _DECLARED.items():
        if collection.buffered:
            visit(name)
    return tuple(order)


def parent(name: str) -> str | None:
    """The buffered collection whose records ``name``'s records reference, or None."""
    declared = spec(name).parent
    return (
        declared if declared is not None and declared in _DECLARED and _DECLARED[declared].buffered else None
    )


def child(name: str) -> str | None:
    """The buffered collection whose records reference ``name``'s records (stored after them,
    deleted with them), or None. The write buffers keep one parent-child level: a parent has one
    buffered child and a child no buffered parent of its own (``check_buffered_tree``)."""
    for candidate in buffered_collections():
        if parent(candidate) == name:
            return candidate
    return None


def check_buffered_tree() -> None:
    """ImproperlyConfigured when the buffered collections' parents are more than the write buffers
    keep (each parent one buffered child, one level deep): the buffers index a child's records by
    their parent's id, one index per parent id."""
    children: dict[str, list[str]] = {}
    for name in buffered_collections():
        above = parent(name)
        if above is None:
            continue
        children.setdefault(above, []).append(name)
        if parent(above) is not None:
            raise ImproperlyConfigured(
                f"The collection {name!r} has a parent ({above!r}) that has a parent itself; the write "
                "buffers keep one parent-child level"
            )
    for above, below in children.items():
        if len(below) > 1:
            raise ImproperlyConfigured(
                f"The collection {above!r} is the parent of several buffered collections ({', '.join(below)}); "
                "the write buffers keep one child per parent"
            )


def plural(name: str) -> str:
    """The collection's records in the words of the answers: ``<item_type>s`` (``sessions``,
    ``tasks``, ``audit_logs``), as in ``sessions_count`` of /health and ``tasks_written`` of a flush."""
    return spec(name).item_type + "s"


def item_type(name: str) -> str:
    return spec(name).item_type


def id_field(name: str) -> str:
    return spec(name).id_field
