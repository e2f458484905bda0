"""The Django admin for API keys: staff create keys (shown once) with scopes and revoke them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from api_keys.models import APIKey

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/api_keys/apikey/add/"


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(user)
    return client


def test_staff_creates_a_key_with_scopes_and_sees_it_once(staff_client, auth_enabled):
    response = staff_client.post(
        ADD_URL, {"name": "importer", "scopes": ["write", "read"], "revoked": ""}, follow=True
    )

    message = next(str(m) for m in response.context["messages"])
    secret = re.search(r"is: (\S+)\. ", message).group(1)
    stored = APIKey.objects.get()
    assert stored.scopes == "read,write"
    assert stored.hashed_key != secret
    assert staff_client.get("/api/v1/system/metrics", headers={"X-API-Key": secret}).status_code == 200


def test_admin_refuses_a_key_without_scopes(staff_client):
    response = staff_client.post(ADD_URL, {"name": "none", "scopes": []})

    assert response.status_code == 200  # the form again, with its error
    assert not APIKey.objects.exists()


def test_revoke_action_revokes_the_selected_keys(staff_client):
    keep, _ = APIKey.objects.create_key(name="keep", scopes="read")
    drop, _ = APIKey.objects.create_key(name="drop", scopes="read")

    staff_client.post(
        "/admin/api_keys/apikey/", {"action": "revoke", "_selected_action": [drop.pk]}, follow=True
    )

    assert APIKey.objects.get(pk=drop.pk).revoked is True
    assert APIKey.objects.get(pk=keep.pk).revoked is False


def test_only_one_api_key_page_is_registered():
    from django.contrib import admin
    from rest_framework_api_key.models import APIKey as LibraryAPIKey

    assert admin.site.is_registered(APIKey)
    assert not admin.site.is_registered(LibraryAPIKey)


def test_admin_is_closed_to_users_who_are_not_staff(client):
    user = get_user_model().objects.create_user("plain", "plain@example.com", "pw-123456")
    client.force_login(user)

    response = client.get("/admin/api_keys/apikey/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_new_key_is_not_sent_back_in_a_cookie(staff_client):
    response = staff_client.post(ADD_URL, {"name": "cookie", "scopes": ["read"]})

    assert response.status_code == 302
    assert "messages" not in response.cookies
