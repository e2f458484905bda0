"""The full-text index of audit messages, per database (storage_backends.search_sql explains why).

SQLite: an FTS5 table with the trigram tokenizer over ``message`` (external content: the text is
not stored twice), kept in sync by triggers. MySQL/MariaDB: a FULLTEXT index over ``search_terms``.

A later migration that makes Django rebuild ``audit_events`` on SQLite (most ALTERs do) drops the
triggers with the old table and renumbers its rowids: it must run ``fulltext_install`` and
``INSERT INTO audit_events_fts(audit_events_fts) VALUES ('rebuild')`` again.
"""

from django.db import migrations

from storage_backends.search_sql import fulltext_install, fulltext_uninstall


def forwards(apps, schema_editor):
    fulltext_install(schema_editor.connection)


def backwards(apps, schema_editor):
    fulltext_uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
