"""The users admin goes through the services: the read cache sees its changes at once."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(staff)
    return client


def _form(user: dict, **changes) -> dict:
    return {
        "username": user["username"],
        "email": user["email"] or "",
        "display_name": user["display_name"],
        "status": user["status"],
        "preferences": "{}",
    } | changes


def test_an_admin_change_is_read_back_at_once(staff_client, api_client, user):
    api_client.get(f"/api/v1/users/{user['user_id']}")  # cached
    response = staff_client.post(
        f"/admin/users/user/{user['user_id']}/change/", _form(user, status="disabled")
    )
    assert response.status_code == 302, response.content
    assert api_client.get(f"/api/v1/users/{user['user_id']}").json()["status"] == "disabled"


def test_the_admin_refuses_an_email_taken_in_another_case(staff_client, api_client, user, uid):
    other = api_client.post("/api/v1/users", {"username": f"o-{uid}"}, format="json").json()
    response = staff_client.post(
        f"/admin/users/user/{other['user_id']}/change/", _form(other, email=user["email"].upper())
    )
    assert response.status_code == 200 and b"Another user has this email" in response.content


def test_an_admin_delete_ends_the_sessions(staff_client, api_client, user):
    token = api_client.post(f"/api/v1/users/{user['user_id']}/sessions", {}, format="json").json()["token"]
    response = staff_client.post(f"/admin/users/user/{user['user_id']}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert (
        api_client.post("/api/v1/users/sessions/validate", {"token": token}, format="json").status_code == 404
    )
    assert api_client.get(f"/api/v1/users/{user['user_id']}").status_code == 404


def test_an_admin_add_creates_the_user(staff_client, api_client, uid):
    form = {
        "user_id": f"adm-{uid}",
        "username": f"adm-{uid}",
        "email": "",
        "display_name": "",
        "status": "active",
    }
    response = staff_client.post("/admin/users/user/add/", form | {"preferences": "{}"})
    assert response.status_code == 302, response.content
    assert api_client.get(f"/api/v1/users/adm-{uid}").json()["username"] == f"adm-{uid}"
