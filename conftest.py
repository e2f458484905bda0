"""Shared fixtures for the whole suite (tests/ mirrors the code)."""

from __future__ import annotations

import pytest


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
