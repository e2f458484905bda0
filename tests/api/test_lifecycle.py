"""DELETE /sessions/{id}, PATCH /sessions/{id}/status, POST /sessions/cleanup (docs/api.md §5)."""

from __future__ import annotations

import pytest

from storage_backends.flush import flush_all
from tests.factories import session_record, task_record
from tests.recovery.stored import days_ago, store_session, store_tasks
from translation.api.lifecycle import SessionCleanupView, SessionStatusView
from translation.api.queries import SessionDetailView
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS, TASKS = "translation_sessions", "translation_tasks"
CLEANUP_URL = "/api/v1/translation/sessions/cleanup"


def session_url(session_id: str) -> str:
    return f"/api/v1/translation/sessions/{session_id}"


def patch_status(client, session_id: str, body, **kwargs):
    return client.patch(session_url(session_id) + "/status", body, format="json", **kwargs)


def restore_status(client, session_id: str) -> int:
    return client.post(f"/api/v1/translation/recovery/restore/{session_id}").status_code


def test_views_declare_the_contract_scopes():
    assert SessionDetailView.required_scope == {"GET": "read", "DELETE": "admin"}
    assert SessionStatusView.required_scope == "write"
    assert SessionCleanupView.required_scope == "admin"


# --- DELETE -------------------------------------------------------------------------------------


def test_delete_answers_200_with_the_tasks_removed(api_client, write_buffer):
    store_session("s-1")
    store_tasks("s-1", 4)
    write_buffer.add(TASKS, [task_record("s-1")])  # one more, still buffered

    response = api_client.delete(session_url("s-1"))

    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "session_id": "s-1", "deleted_tasks": 5}
    assert not Session.objects.exists() and not Task.objects.exists()


def test_deleted_session_is_gone_from_the_api(api_client, write_buffer):
    store_session("s-1", status="processing")

    api_client.delete(session_url("s-1"))

    assert restore_status(api_client, "s-1") == 404
    assert api_client.get("/api/v1/translation/recovery/incomplete-sessions").json()["count"] == 0


def test_delete_before_flush_stays_deleted_after_the_flush_endpoint(api_client, write_buffer):
    api_client.post(
        "/api/v1/translation/sessions/batch", {"sessions": [session_record("s-1")]}, format="json"
    )
    api_client.post("/api/v1/translation/tasks/batch", {"tasks": [task_record("s-1")] * 1}, format="json")

    assert api_client.delete(session_url("s-1")).json()["deleted_tasks"] == 1
    flushed = api_client.post("/api/v1/translation/flush").json()

    assert flushed["sessions_written"] == 0 and flushed["tasks_written"] == 0
    assert not Session.objects.exists()
    assert restore_status(api_client, "s-1") == 404


def test_delete_of_an_unknown_session_is_404_with_its_id(api_client, write_buffer):
    response = api_client.delete(session_url("nope"))

    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"
    assert response.json()["session_id"] == "nope"


def test_deleting_twice_is_404_the_second_time(api_client, write_buffer):
    store_session("s-1")

    assert api_client.delete(session_url("s-1")).status_code == 200
    assert api_client.delete(session_url("s-1")).status_code == 404


# --- PATCH status -----------------------------------------------------------------------------------


def test_patch_status_answers_the_updated_detail(api_client, write_buffer):
    store_session("s-1", status="processing", total_tasks=4, completed_tasks=2)

    response = patch_status(api_client, "s-1", {"status": "cancelled"})

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "cancelled"
    assert body["session_id"] == "s-1"
    assert body["progress"] == 50.0
    assert {"file_path", "game_info", "metadata", "estimated_completion", "pending_tasks"} <= set(body)


def test_patched_status_is_stored_by_the_next_flush(api_client, write_buffer):
    store_session("s-1", status="processing")

    patch_status(api_client, "s-1", {"status": "cancelled"})
    flush_all(write_buffer, wait=5)

    assert Session.objects.get(pk="s-1").status == "cancelled"


def test_patch_status_of_a_session_not_flushed_yet(api_client, write_buffer):
    write_buffer.add(SESSIONS, [session_record("s-1", status="processing")])

    response = patch_status(api_client, "s-1", {"status": "completed"})

    assert response.status_code == 200
    assert write_buffer.get(SESSIONS, "s-1")["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "paused"}, "status"),
        ({"status": 3}, "status"),
        ({}, "status"),
        ({"status": "cancelled", "reason": "user"}, "reason"),
    ],
)
def test_patch_with_an_invalid_body_is_422_naming_the_field(api_client, write_buffer, body, field):
    store_session("s-1")

    response = patch_status(api_client, "s-1", body)

    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("raw", [b"", b"not json", b'["cancelled"]'])
def test_patch_with_a_body_that_is_not_a_json_object_is_400(api_client, write_buffer, raw):
    store_session("s-1")

    response = api_client.generic(
        "PATCH", session_url("s-1") + "/status", raw, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_JSON"


def test_patch_of_an_unknown_session_is_404(api_client, write_buffer):
    response = patch_status(api_client, "nope", {"status": "cancelled"})

    assert response.status_code == 404
    assert response.json()["session_id"] == "nope"


# --- cleanup ---------------------------------------------------------------------------------------


def old_and_young() -> None:
    store_session("old-done", status="completed", updated_at=days_ago(100))
    store_session("old-failed", status="failed", updated_at=days_ago(40))
    store_session("young-done", status="completed", updated_at=days_ago(5))
    for session_id in ("old-done", "old-failed", "young-done"):
        store_tasks(session_id, 3)


def test_cleanup_with_an_empty_body_uses_the_configured_retention(api_client, write_buffer, settings):
    settings.RETENTION_COMPLETED_DAYS = 90
    settings.RETENTION_FAILED_DAYS = 30
    old_and_young()

    response = api_client.post(CLEANUP_URL)

    assert response.status_code == 200
    assert response.json() == {
        "status": "completed",
        "deleted_sessions": 2,
        "deleted_tasks": 6,
        "dry_run": False,
    }
    assert list(Session.objects.values_list("pk", flat=True)) == ["young-done"]


def test_cleanup_dry_run_counts_what_the_real_run_deletes(api_client, write_buffer):
    old_and_young()

    dry = api_client.post(
        CLEANUP_URL, {"completed_days": 1, "failed_days": 1, "dry_run": True}, format="json"
    )
    counts = (Session.objects.count(), Task.objects.count())
    real = api_client.post(CLEANUP_URL, {"completed_days": 1, "failed_days": 1}, format="json")

    assert counts == (3, 9)
    assert dry.json()["dry_run"] is True and real.json()["dry_run"] is False
    assert (dry.json()["deleted_sessions"], dry.json()["deleted_tasks"]) == (3, 9)
    assert (real.json()["deleted_sessions"], real.json()["deleted_tasks"]) == (3, 9)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"completed_days": -1}, "completed_days"),
        ({"failed_days": "30"}, "failed_days"),
        ({"dry_run": "yes"}, "dry_run"),
        ({"completed_days": 1.5}, "completed_days"),
        ({"days": 3}, "days"),
    ],
)
def test_cleanup_with_an_invalid_body_is_422(api_client, write_buffer, body, field):
    old_and_young()

    response = api_client.post(CLEANUP_URL, body, format="json")

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert Session.objects.count() == 3
