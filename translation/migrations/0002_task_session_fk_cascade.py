"""A database-level ``ON DELETE CASCADE`` foreign key from tasks to sessions (MySQL/MariaDB).

Django 5.2 cascades in Python (loading every related row first), which takes hours for sessions
with millions of tasks, so the model declares no constraint and this migration adds one that the
database enforces and cascades. SQLite cannot add a constraint to an existing table; in the embedded
mode the delete service removes a session's tasks itself.

The constraint can only hold where sessions and tasks are in the same database: it is added on a
database that the storage routes (STORAGE_BACKENDS) give both collections, and nowhere else (a
database serving tasks alone would refuse every task, its sessions table being empty). The delete
service removes a session's tasks itself in every case, so the cascade is only a safety net.
"""

from django.db import migrations

CONSTRAINT = "translation_tasks_session_fk"


def _holds_both(alias):
    """Whether the database ``alias`` stores both sessions and tasks (the SQL plugin on it)."""
    from storage_backends import registry

    return all(
        getattr(registry.backend(collection), "database", None) == alias
        for collection in ("translation_sessions", "translation_tasks")
    )


def add_fk(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql" or not _holds_both(schema_editor.connection.alias):
        return
    schema_editor.execute(
        f"ALTER TABLE translation_tasks ADD CONSTRAINT {CONSTRAINT} FOREIGN KEY (session_id) "
        "REFERENCES translation_sessions (session_id) ON DELETE CASCADE"
    )


def drop_fk(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        if CONSTRAINT not in connection.introspection.get_constraints(cursor, "translation_tasks"):
            return  # never added here (see _holds_both)
    schema_editor.execute(f"ALTER TABLE translation_tasks DROP FOREIGN KEY {CONSTRAINT}")


class Migration(migrations.Migration):
    atomic = False  # MySQL cannot run DDL inside a transaction
    dependencies = [("translation", "0001_initial")]
    operations = [migrations.RunPython(add_fk, drop_fk, elidable=False)]
