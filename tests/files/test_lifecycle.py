"""Files follow their sessions (retention cleanup too), the cleanup command, metrics and health."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from files.models import File
from files.services import object_key
from tests.files.conftest import MOTO_ENDPOINT
from tests.recovery.stored import days_ago, store_session
from translation.services.lifecycle import sessions_cleanup

BASE = "/api/v1/storage/files"


def _upload(client, data: bytes, **fields) -> dict:
    body = {"file": SimpleUploadedFile("f.csv", data, content_type="text/csv"), **fields}
    response = client.post(f"{BASE}/upload", body, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_retention_cleanup_deletes_the_files_of_the_sessions_it_deletes(api_client, store, write_buffer):
    store_session("old-done", status="completed", updated_at=days_ago(100))
    store_session("young-done", status="completed", updated_at=days_ago(5))
    old = _upload(api_client, b"old", session_id="old-done")
    young = _upload(api_client, b"young", session_id="young-done")

    result = sessions_cleanup(completed_days=90, failed_days=30, buffer=write_buffer)

    assert result.deleted_sessions == 1
    assert not File.objects.filter(pk=old["file_id"]).exists()
    assert store.stat(object_key(old["file_id"])) is None
    assert File.objects.filter(pk=young["file_id"]).exists()
    assert store.stat(object_key(young["file_id"])) is not None


@pytest.mark.django_db(transaction=True)
def test_session_delete_with_the_store_down_hides_the_files_for_the_sweep(
    api_client, store, write_buffer, settings
):
    from translation.services.lifecycle import session_delete

    store_session("s-down", status="completed", updated_at=days_ago(1))
    doomed = _upload(api_client, b"doomed", session_id="s-down")
    if store.direct:
        settings.FILES_S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens there
        settings.FILES_S3_BUCKET = store.bucket
    else:
        settings.FILES_BACKEND = "storage_backends.object_store.S3ObjectStore"
        settings.FILES_S3_ENDPOINT_URL = "http://127.0.0.1:9"
        settings.FILES_S3_BUCKET = "x"
    from storage_backends.object_store import reset_object_store

    reset_object_store()
    session_delete(session_id="s-down", buffer=write_buffer)  # the session delete still succeeds

    assert api_client.get(f"{BASE}/{doomed['file_id']}").status_code == 404  # hidden at once
    assert File.objects.filter(pk=doomed["file_id"]).exists()  # left for the sweep


def test_cleanup_command(api_client, store, capsys):
    file_id = _upload(api_client, b"x", expires_in="60")["file_id"]
    File.objects.filter(pk=file_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    call_command("cleanup_files", "--dry-run")
    assert "would delete: 1 expired" in capsys.readouterr().out
    assert store.stat(object_key(file_id)) is not None
    call_command("cleanup_files")
    assert "deleted: 1 expired, 0 stale pending, 0 orphan objects" in capsys.readouterr().out
    assert store.stat(object_key(file_id)) is None


def test_metrics_count_per_backend_and_start_at_zero(api_client, store):
    for backend in ("local", "s3"):
        assert REGISTRY.get_sample_value("persistence_files_uploads_total", {"backend": backend}) is not None
        assert (
            REGISTRY.get_sample_value(
                "persistence_files_errors_total", {"backend": backend, "operation": "upload"}
            )
            is not None
        )
    before = REGISTRY.get_sample_value("persistence_files_uploaded_bytes_total", {"backend": store.name})
    _upload(api_client, b"12345")
    after = REGISTRY.get_sample_value("persistence_files_uploaded_bytes_total", {"backend": store.name})
    assert after - before == 5


def test_health_and_recovery_status_report_the_object_store(api_client, store, settings, write_buffer):
    assert api_client.get("/health").json()["object_store"] == "healthy"
    status = api_client.get("/api/v1/translation/recovery/status").json()
    assert status["storage"]["object_store"] == "healthy"
    settings.FILES_BACKEND = "s3"
    settings.FILES_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.FILES_S3_BUCKET = "x"
    from storage_backends.object_store import reset_object_store

    reset_object_store()
    body = api_client.get("/health")
    assert body.json()["object_store"] == "unhealthy"
    assert body.status_code == 200  # task writes do not depend on the object store


def test_store_outage_on_upload_is_503(api_client, store, settings):
    settings.FILES_BACKEND = "s3"
    settings.FILES_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.FILES_S3_BUCKET = "x"
    from storage_backends.object_store import reset_object_store

    reset_object_store()
    response = api_client.post(
        f"{BASE}/upload", {"file": SimpleUploadedFile("a", b"abc")}, format="multipart"
    )
    assert response.status_code == 503
    assert response.json()["error_code"] == "STORAGE_UNAVAILABLE"
    assert not File.objects.exists()


def test_a_multipart_upload_over_the_limit_is_aborted(api_client, store, settings):
    settings.FILES_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # more than one 8 MiB part, then refused
    response = api_client.post(
        f"{BASE}/upload", {"file": SimpleUploadedFile("big", b"z" * (12 * 1024 * 1024))}, format="multipart"
    )
    assert response.status_code == 413
    assert not File.objects.exists()
    assert list(store.iter_objects(settings.FILES_KEY_PREFIX)) == []
    if store.direct:
        uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=settings.FILES_KEY_PREFIX)
        assert uploads.get("Uploads", []) == []


def test_the_sweep_aborts_unfinished_multipart_uploads(store, settings):
    if not store.direct:
        pytest.skip("multipart uploads are an S3 notion")
    key = object_key("0e0e0e0e-0000-4000-8000-000000000000")
    store.client.create_multipart_upload(Bucket=store.bucket, Key=key)  # a worker died mid-upload
    from files.services import files_cleanup

    # moto_server reports every upload as initiated in 2010, so "young uploads are kept" can only be
    # seen against a real endpoint (-m external).
    if settings.FILES_S3_ENDPOINT_URL != MOTO_ENDPOINT:
        assert files_cleanup()["incomplete"] == 0  # young: maybe still running
    later = timezone.now() + dt.timedelta(seconds=settings.FILES_ORPHAN_GRACE + 60)
    assert files_cleanup(now=later)["incomplete"] == 1
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=settings.FILES_KEY_PREFIX)
    assert uploads.get("Uploads", []) == []


def test_the_beat_job_runs_the_sweep(api_client, store, settings):
    from files.tasks import cleanup_files

    assert settings.CELERY_BEAT_SCHEDULE["cleanup-files"]["task"] == "files.tasks.cleanup_files"
    file_id = _upload(api_client, b"x", expires_in="60")["file_id"]
    File.objects.filter(pk=file_id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert cleanup_files()["expired"] == 1
    assert store.stat(object_key(file_id)) is None


def test_the_effective_config_shows_the_object_store(api_client, store, settings):
    files = api_client.get("/api/v1/system/config").json()["files"]
    assert files["backend"] == store.name
    assert files["max_upload_bytes"] == settings.FILES_MAX_UPLOAD_BYTES
    assert (files["root"] is None) == store.direct
