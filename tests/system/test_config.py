"""GET /api/v1/system/config: the effective configuration, never a secret."""

from __future__ import annotations

import pytest

from system.selectors import mask_url

pytestmark = pytest.mark.django_db
URL = "/api/v1/system/config"


def test_config_shows_buffer_retention_and_storage(client, settings):
    settings.BUFFER_FLUSH_SIZE = 500
    settings.RETENTION_FAILED_DAYS = 7

    body = client.get(URL).json()

    assert body["buffer"]["flush_size"] == 500
    assert body["buffer"]["flush_interval_seconds"] == settings.BUFFER_FLUSH_INTERVAL
    assert body["buffer"]["capacity"] == settings.BUFFER_CAPACITY
    assert body["buffer"]["store"] == "redis"
    assert body["retention"] == {"completed_days": settings.RETENTION_COMPLETED_DAYS, "failed_days": 7}


def test_config_names_each_storage_backend_and_the_collections_it_serves(client, settings):
    settings.STORAGE_BACKENDS = {
        "translation_sessions": "storage_backends.sql.SQLBackend",
        "translation_tasks": "storage_backends.sql.SQLBackend",
    }

    storage = client.get(URL).json()["storage"]

    assert storage["backends"] == [
        {
            "name": "sql",
            "path": "storage_backends.sql.SQLBackend",
            "collections": ["translation_sessions", "translation_tasks"],
        }
    ]
    assert storage["collections"] == {"translation_sessions": "sql", "translation_tasks": "sql"}


def test_config_without_storage_backends_setting_shows_none(client, settings):
    del settings.STORAGE_BACKENDS

    response = client.get(URL)

    assert response.status_code == 200
    assert response.json()["storage"] == {"backends": [], "collections": {}}


def test_config_never_shows_secrets(client, settings):
    settings.SECRET_KEY = "super-secret-key-value-" + "z" * 40
    settings.CELERY_BROKER_URL = "redis://worker:br0ker-pa55@redis.internal:6379/1"

    response = client.get(URL)

    text = response.content.decode()
    assert settings.SECRET_KEY not in text
    assert "br0ker-pa55" not in text
    assert response.json()["celery"]["broker_url"] == "redis://worker:***@redis.internal:6379/1"
    assert "PASSWORD" not in text and "password" not in text


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("mysql://app:s3cret@db:3306/persistence", "mysql://app:***@db:3306/persistence"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("memory://", "memory://"),
        (None, None),
    ],
)
def test_mask_url_hides_only_the_password(url, masked):
    assert mask_url(url) == masked


def test_config_needs_the_admin_scope(client, auth_enabled, make_api_key):
    assert client.get(URL, headers={"X-API-Key": make_api_key("read,write")}).status_code == 403
    assert client.get(URL, headers={"X-API-Key": make_api_key("admin")}).status_code == 200
