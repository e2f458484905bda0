"""Fixtures of the users tests: unique ids, and a user made through the API."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def user(api_client, uid) -> dict:
    response = api_client.post(
        "/api/v1/users",
        {"user_id": f"u-{uid}", "username": f"name-{uid}", "email": f"{uid}@Example.com"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()
