"""The audit hook point (users.signals.user_audit_event) is sent once per change, after commit."""

from __future__ import annotations

import pytest

from users.signals import user_audit_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    seen: list[tuple[str, str, str]] = []

    def receiver(sender, action, resource_type, resource_id, actor, **kwargs):
        seen.append((action, resource_type, resource_id))

    user_audit_event.connect(receiver)
    yield seen
    user_audit_event.disconnect(receiver)


def test_create_update_session_end_and_delete_send_one_event_each(
    api_client, uid, events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post("/api/v1/users", {"user_id": f"a{uid}", "username": f"a{uid}"}, format="json")
        api_client.patch(f"/api/v1/users/a{uid}", {"display_name": "A"}, format="json")
        session = api_client.post(f"/api/v1/users/a{uid}/sessions", {}, format="json").json()
        api_client.delete(f"/api/v1/users/sessions/{session['session_id']}")
        api_client.delete(f"/api/v1/users/a{uid}")
    assert events == [
        ("user.create", "user", f"a{uid}"),
        ("user.update", "user", f"a{uid}"),
        ("user_session.end", "user_session", session["session_id"]),
        ("user.delete", "user", f"a{uid}"),
    ]


def test_a_refused_write_sends_nothing(api_client, user, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post("/api/v1/users", {"username": user["username"]}, format="json")
    assert events == []
