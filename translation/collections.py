"""The translation app's collections, as it declares them to the storage layer (storage_backends.catalog).

backend(SESSIONS).read(SESSIONS, "s-1")
buffer.children(SESSIONS, "s-1")     # the session's buffered tasks
"""

from __future__ import annotations

SESSIONS = "translation_sessions"
TASKS = "translation_tasks"


def declare_collections() -> None:
    """Declare sessions and tasks (a task references its session: stored after it, deleted with it)."""
    from storage_backends.catalog import Collection, declare
    from translation.validation import SessionIn, TaskIn

    declare(
        Collection(
            SESSIONS,
            model="translation.Session",
            id_field="session_id",
            item_type="session",
            schema=SessionIn,
        )
    )
    declare(
        Collection(
            TASKS,
            model="translation.Task",
            id_field="task_id",
            item_type="task",
            parent=SESSIONS,
            parent_field="session_id",
            schema=TaskIn,
        )
    )
