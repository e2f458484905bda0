"""Fixtures of the storage backend tests."""

from __future__ import annotations

import pytest
from django.db import connections

from persistence_site.config import database_config, load_env
from storage_backends.models import BufferedWrite, BufferLock, BufferState, BufferTombstone
from storage_backends.sqlite_buffer import SQLiteWriteBuffer

SQLITE_ALIAS = "embedded_buffer_test"


@pytest.fixture
def sqlite_buffer(tmp_path, django_db_blocker):
    """A SQLiteWriteBuffer on a fresh SQLite file, configured as the embedded mode configures it."""
    config = database_config(load_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'buffer.sqlite3'}"}))
    connections.settings[SQLITE_ALIAS] = connections.configure_settings(
        {"default": {}, SQLITE_ALIAS: config}
    )[SQLITE_ALIAS]
    with django_db_blocker.unblock():
        with connections[SQLITE_ALIAS].schema_editor() as editor:
            for model in (BufferedWrite, BufferTombstone, BufferLock, BufferState):
                editor.create_model(model)
        yield SQLiteWriteBuffer(using=SQLITE_ALIAS)
        connections[SQLITE_ALIAS].close()
    del connections[SQLITE_ALIAS]  # this thread's connection object, bound to the file
    del connections.settings[SQLITE_ALIAS]
