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
