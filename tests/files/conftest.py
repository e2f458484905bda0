"""Fixtures of the files tests: the object store, local or S3 over HTTP (never mocked).

``store`` is parametrized: ``local`` (a temporary FILES_ROOT), ``s3`` (moto_server started by
scripts/services.sh on 127.0.0.1:FILES_TEST_S3_PORT, default 9000, through boto3 over HTTP) and
``external`` (the same cases against FILES_S3_ENDPOINT_URL and FILES_S3_BUCKET when set, marked
``external``; skipped otherwise). Each test gets its own key prefix, so runs never see each other.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from storage_backends.object_store import S3ObjectStore, get_object_store, reset_object_store
from tests.api_keys.fixtures import auth_enabled, make_api_key  # noqa: F401

S3_PORT = int(os.environ.get("FILES_TEST_S3_PORT", "9000"))
MOTO_ENDPOINT = f"http://127.0.0.1:{S3_PORT}"
EXTERNAL_ENDPOINT = os.environ.get("FILES_S3_ENDPOINT_URL")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


BACKENDS = [
    "local",
    "s3",
    pytest.param("external", marks=pytest.mark.external),
]


@pytest.fixture(params=BACKENDS)
def store(request, settings, tmp_path, db):
    """The configured object store for this test (FILES_BACKEND and friends set in settings)."""
    settings.FILES_KEY_PREFIX = f"files-test/{uuid.uuid4().hex[:12]}/"
    if request.param == "local":
        settings.FILES_BACKEND = "local"
        settings.FILES_ROOT = str(tmp_path / "files")
    elif request.param == "s3":
        if not _port_open(S3_PORT):
            pytest.fail(f"moto_server is not running on {MOTO_ENDPOINT}: run scripts/services.sh")
        settings.FILES_BACKEND = "s3"
        settings.FILES_S3_ENDPOINT_URL = MOTO_ENDPOINT
        settings.FILES_S3_PUBLIC_ENDPOINT_URL = None
        settings.FILES_S3_BUCKET = "persistence-files-test"
        settings.FILES_S3_ACCESS_KEY_ID = "testing"
        settings.FILES_S3_SECRET_ACCESS_KEY = "testing"
        settings.FILES_S3_ADDRESSING_STYLE = "path"
    else:
        if not EXTERNAL_ENDPOINT or not os.environ.get("FILES_S3_BUCKET"):
            pytest.skip(
                "FILES_S3_ENDPOINT_URL and FILES_S3_BUCKET are not set: no external S3 endpoint to test"
            )
        settings.FILES_BACKEND = "s3"
        settings.FILES_S3_ENDPOINT_URL = EXTERNAL_ENDPOINT
        settings.FILES_S3_BUCKET = os.environ["FILES_S3_BUCKET"]
    reset_object_store()
    backend = get_object_store()
    if isinstance(backend, S3ObjectStore) and request.param == "s3":
        backend.ensure_bucket()
    yield backend
    try:  # leave nothing behind in a shared bucket
        keys = [key for key, _ in backend.iter_objects(settings.FILES_KEY_PREFIX)]
        backend.delete_objects(keys)
    finally:
        reset_object_store()
