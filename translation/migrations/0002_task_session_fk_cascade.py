"""A database-level ``ON DELETE CASCADE`` foreign key from tasks to sessions (MySQL/MariaDB).

Django 5.2 cascades in Python (loading every related row first), which takes hours for sessions
with millions of tasks, so the model declares no constraint and this migration adds one that the
database enforces and cascades. SQLite cannot add a constraint to an existing table; in the embedded
mode the delete service removes a session's tasks itself.
"""

from django.db import migrations

CONSTRAINT = "translation_tasks_session_fk"


def add_fk(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    schema_editor.execute(
        f"ALTER TABLE translation_tasks ADD CONSTRAINT {CONSTRAINT} FOREIGN KEY (session_id) "
        "REFERENCES translation_sessions (session_id) ON DELETE CASCADE"
    )


def drop_fk(apps, schema_editor):
    if schema_editor.connection.vendor != "mysql":
        return
    schema_editor.execute(f"ALTER TABLE translation_tasks DROP FOREIGN KEY {CONSTRAINT}")


class Migration(migrations.Migration):
    atomic = False  # MySQL cannot run DDL inside a transaction
    dependencies = [("translation", "0001_initial")]
    operations = [migrations.RunPython(add_fk, drop_fk, elidable=False)]
