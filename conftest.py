"""Shared fixtures for the whole suite (tests/ mirrors the code)."""

from __future__ import annotations

import pytest


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def write_buffer(settings):
    """The configured write buffer (Redis in the test settings), emptied before and after."""
    from storage_backends.buffer import _buffer_for, get_write_buffer

    buffer = get_write_buffer()
    buffer.clear()
    yield buffer
    buffer.clear()
    _buffer_for.cache_clear()


@pytest.fixture(autouse=True)
def _forget_stored_sessions():
    """A test's sessions leave the database without the buffer's tombstones (a rollback, a flush of
    the tables), which the ingest service's cache of stored sessions relies on: forget them."""
    yield
    from translation.services import ingest

    ingest._stored.clear()


@pytest.fixture(scope="module", autouse=True)
def _empty_database_after_each_module(django_db_blocker):
    """Tests that start real servers (gunicorn, Celery) commit rows outside any test transaction.
    Emptying the tables after each module keeps every module independent of the ones before it,
    in any order (``-p randomly`` shuffles modules, and the tests within each)."""
    yield
    from django.db import connection

    if not connection.settings_dict["NAME"].startswith("test_"):
        return  # this module never set the test database up: nothing to empty (and never the real one)
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def pytest_collection_finish(session: pytest.Session) -> None:
    """With the container rehearsal selected, its image starts building now, in the background,
    so the build overlaps the rest of the suite instead of adding minutes at its end."""
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker("container") for item in session.items):
        from tests.test_containers import start_build

        start_build()
