"""Fixtures of the recovery tests."""

from __future__ import annotations

import pytest

from tests.processes import free_port


@pytest.fixture
def redis_down(settings, write_buffer):
    """Point the service at a port where no Redis listens (the buffer store is unreachable)."""
    from storage_backends.buffer import _buffer_for

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    yield
    _buffer_for.cache_clear()
