"""The service audits its own operations (docs/api.md §9, last bullet): one test per operation, the
actor (the API key's name, or the admin user), the request id and client address, failures with
``outcome: failure``, and an operation that goes on when its event cannot be buffered."""

from __future__ import annotations

import io
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from api_keys.models import APIKey
from api_keys.services import api_key_create
from audit.metrics import EVENTS_DROPPED
from audit.services import record_event
from storage_backends.search import AUDIT_LOGS
from tests.factories import session_record

pytestmark = pytest.mark.django_db

SESSIONS = "translation_sessions"
HEADERS = {"X-Request-ID": "req-audit-1", "User-Agent": "audit-tests/1.0"}
ADDRESS = "198.51.100.7"


def _events(buffer, action: str) -> list[dict]:
    """The buffered events of ``action`` (in no particular order: the Redis buffer is a hash)."""
    return [e for e in buffer.records(AUDIT_LOGS) if e["action"] == action]


def _only(buffer, action: str) -> dict:
    found = _events(buffer, action)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def ops(api_client, auth_enabled, write_buffer):
    """An API client with an admin key named ``ops-key`` (the actor of every event here)."""
    _, secret = api_key_create(name="ops-key", scopes="admin")
    write_buffer.clear()  # the key's own creation is an event too; each test counts its own
    api_client.credentials(
        HTTP_X_API_KEY=secret, HTTP_X_REQUEST_ID="req-audit-1", HTTP_USER_AGENT="audit-tests/1.0"
    )
    api_client.defaults["REMOTE_ADDR"] = ADDRESS
    return api_client


def _by_key(event: dict) -> None:
    assert (event["actor_id"], event["actor_type"]) == ("ops-key", "api_key")
    assert (event["request_id"], event["ip"], event["user_agent"]) == (
        "req-audit-1",
        ADDRESS,
        "audit-tests/1.0",
    )
    assert event["timestamp"].tzinfo is not None and uuid.UUID(event["event_id"])


# --- translation sessions ----------------------------------------------------------------------


def test_session_delete_is_audited(ops, write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-del")])

    assert ops.delete("/api/v1/translation/sessions/s-del").status_code == 200

    event = _only(write_buffer, "session.delete")
    _by_key(event)
    assert (event["outcome"], event["resource_type"], event["resource_id"]) == ("success", "session", "s-del")
    assert event["details"] == {"deleted_tasks": 0}


def test_a_failed_session_delete_is_audited_as_a_failure(ops, write_buffer):
    assert ops.delete("/api/v1/translation/sessions/nope").status_code == 404

    event = _only(write_buffer, "session.delete")
    assert (event["outcome"], event["resource_id"]) == ("failure", "nope")
    assert event["details"]["error_code"] == "NOT_FOUND"


def test_session_status_change_is_audited(ops, write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-st", status="processing")])

    response = ops.patch("/api/v1/translation/sessions/s-st/status", {"status": "cancelled"}, format="json")

    assert response.status_code == 200
    event = _only(write_buffer, "session.status_change")
    _by_key(event)
    assert event["details"] == {"status": "cancelled", "previous_status": "processing"}


def test_sessions_cleanup_is_audited(ops, write_buffer):
    response = ops.post("/api/v1/translation/sessions/cleanup", {"dry_run": True}, format="json")

    assert response.status_code == 200
    event = _only(write_buffer, "session.cleanup")
    _by_key(event)
    assert event["details"]["dry_run"] is True and event["details"]["deleted_sessions"] == 0


# --- API keys ------------------------------------------------------------------------------------


def test_api_key_create_by_command_is_audited(write_buffer):
    call_command("create_api_key", "importer", "--scopes", "read", "--quiet", stdout=io.StringIO())

    event = _only(write_buffer, "api_key.create")
    key = APIKey.objects.get(name="importer")
    assert (event["actor_id"], event["actor_type"]) == ("manage.py create_api_key", "system")
    assert (event["resource_type"], event["resource_id"]) == ("api_key", key.prefix)
    assert event["details"] == {"scopes": "read"}


def test_api_key_revoke_by_command_is_audited_and_so_is_a_failed_one(write_buffer):
    key, _ = APIKey.objects.create_key(name="old", scopes="read")
    call_command("revoke_api_key", key.prefix, stdout=io.StringIO())
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "missing", stdout=io.StringIO())

    events = _events(write_buffer, "api_key.revoke")
    assert sorted((e["resource_id"], e["outcome"]) for e in events) == sorted(
        [(key.prefix, "success"), ("missing", "failure")]
    )
    assert APIKey.objects.get(pk=key.pk).revoked is True


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("root-admin", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_api_key_create_and_revoke_in_the_admin_are_audited_with_the_admin_user(staff_client, write_buffer):
    staff_client.post("/admin/api_keys/apikey/add/", {"name": "via-admin", "scopes": ["read"], "revoked": ""})
    key = APIKey.objects.get(name="via-admin")
    staff_client.post("/admin/api_keys/apikey/", {"action": "revoke", "_selected_action": [key.pk]})

    created = _only(write_buffer, "api_key.create")
    revoked = _only(write_buffer, "api_key.revoke")
    assert (created["actor_id"], created["actor_type"], created["resource_id"]) == (
        "root-admin",
        "user",
        key.prefix,
    )
    assert (revoked["actor_id"], revoked["resource_id"]) == ("root-admin", key.prefix)


def test_api_key_revoked_through_the_change_form_is_audited(staff_client, write_buffer):
    key, _ = APIKey.objects.create_key(name="form", scopes="read")

    staff_client.post(
        f"/admin/api_keys/apikey/{key.pk}/change/", {"name": "form", "scopes": ["read"], "revoked": "on"}
    )

    assert APIKey.objects.get(pk=key.pk).revoked is True
    assert _only(write_buffer, "api_key.revoke")["actor_id"] == "root-admin"


# --- users ---------------------------------------------------------------------------------------


def test_user_create_update_and_delete_are_audited(ops, write_buffer):
    created = ops.post("/api/v1/users", {"user_id": "u-1", "username": "ada"}, format="json")
    updated = ops.patch("/api/v1/users/u-1", {"display_name": "Ada"}, format="json")
    deleted = ops.delete("/api/v1/users/u-1")

    assert (created.status_code, updated.status_code, deleted.status_code) == (201, 200, 200)
    for action in ("user.create", "user.update", "user.delete"):
        event = _only(write_buffer, action)
        _by_key(event)
        assert (event["resource_type"], event["resource_id"], event["outcome"]) == ("user", "u-1", "success")


def test_a_failed_user_create_is_audited_as_a_failure(ops, write_buffer):
    ops.post("/api/v1/users", {"user_id": "u-2", "username": "bob"}, format="json")
    conflict = ops.post("/api/v1/users", {"user_id": "u-3", "username": "bob"}, format="json")

    assert conflict.status_code == 409
    outcomes = [(e["resource_id"], e["outcome"]) for e in _events(write_buffer, "user.create")]
    assert sorted(outcomes) == [("u-2", "success"), ("u-3", "failure")]


def test_user_session_end_is_audited(ops, write_buffer):
    ops.post("/api/v1/users", {"user_id": "u-4", "username": "cy"}, format="json")
    session = ops.post("/api/v1/users/u-4/sessions", {}, format="json").json()

    assert ops.delete(f"/api/v1/users/sessions/{session['session_id']}").status_code == 200
    assert ops.delete("/api/v1/users/u-4/sessions").status_code == 200

    event = _only(write_buffer, "user_session.end")
    _by_key(event)
    assert (event["resource_type"], event["resource_id"]) == ("user_session", session["session_id"])
    assert _only(write_buffer, "user_session.end_all")["resource_id"] == "u-4"


# --- files ---------------------------------------------------------------------------------------


@pytest.fixture
def local_files(settings, tmp_path):
    from storage_backends.object_store import reset_object_store

    settings.FILES_BACKEND = "local"
    settings.FILES_ROOT = str(tmp_path / "files")
    reset_object_store()
    yield
    reset_object_store()


def test_file_upload_download_and_delete_are_audited(ops, write_buffer, local_files):
    upload = ops.post(
        "/api/v1/storage/files/upload",
        {"file": SimpleUploadedFile("book.csv", b"a,b\n", content_type="text/csv")},
        format="multipart",
    )
    file_id = upload.json()["file_id"]
    download = ops.get(f"/api/v1/storage/files/{file_id}/download")
    b"".join(download.streaming_content)
    delete = ops.delete(f"/api/v1/storage/files/{file_id}")
    missing = ops.get(f"/api/v1/storage/files/{file_id}/download")

    assert (upload.status_code, download.status_code, delete.status_code, missing.status_code) == (
        201,
        200,
        200,
        404,
    )
    for action in ("file.upload", "file.delete"):
        event = _only(write_buffer, action)
        _by_key(event)
        assert (event["resource_type"], event["resource_id"], event["outcome"]) == (
            "file",
            file_id,
            "success",
        )
    downloads = [(e["resource_id"], e["outcome"]) for e in _events(write_buffer, "file.download")]
    assert sorted(downloads) == [(file_id, "failure"), (file_id, "success")]


# --- system --------------------------------------------------------------------------------------


def test_system_config_reads_are_audited(ops, write_buffer):
    assert ops.get("/api/v1/system/config").status_code == 200

    event = _only(write_buffer, "system_config.read")
    _by_key(event)
    assert (event["resource_type"], event["resource_id"]) == ("system", "config")


# --- the recording itself --------------------------------------------------------------------------


def test_an_operation_goes_on_when_its_event_cannot_be_buffered(ops, write_buffer, settings):
    settings.BUFFER_CAPACITY = 1
    write_buffer.add(SESSIONS, [session_record("fills-the-buffer")])
    lost_before = EVENTS_DROPPED._value.get()

    response = ops.get("/api/v1/system/config")

    assert response.status_code == 200
    assert EVENTS_DROPPED._value.get() == lost_before + 1
    assert _events(write_buffer, "system_config.read") == []


def test_an_unreachable_buffer_store_costs_one_attempt_then_events_are_dropped_at_once(
    write_buffer, settings
):
    from audit import services
    from storage_backends.buffer import _buffer_for

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    dropped_before = EVENTS_DROPPED._value.get()
    try:
        first = record_event("maintenance.run")
        paused = services._paused_until
        second = record_event("maintenance.run")
    finally:
        services._paused_until = 0.0
        _buffer_for.cache_clear()

    assert first is None and second is None
    assert paused > 0 and services._paused_until == 0.0
    assert EVENTS_DROPPED._value.get() == dropped_before + 2


def test_record_event_without_a_request_is_by_the_system(write_buffer):
    event_id = record_event("maintenance.run", message="nightly", details={"when": object()})

    event = write_buffer.get(AUDIT_LOGS, event_id)
    assert (event["actor_id"], event["actor_type"], event["ip"]) == ("system", "system", None)
    assert event["details"]["when"].startswith("<object")  # made JSON-safe, never an error
