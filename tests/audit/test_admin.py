"""The admin's audit pages are read-only: staff list, filter and read events; nobody adds, changes
or deletes one by hand."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from storage_backends.search import AUDIT_LOGS
from storage_backends.search_sql import SQLAuditSearch
from tests.audit.conftest import event

pytestmark = pytest.mark.django_db
LIST = "/admin/audit/auditevent/"


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_superuser("auditor", "auditor@example.com", "pw-123456")
    client.force_login(user)
    SQLAuditSearch().write(AUDIT_LOGS, [event(event_id="adm-1", message="删除翻译会话", actor_id="alice")])
    return client


def test_staff_list_and_read_events(staff_client):
    listing = staff_client.get(LIST, {"outcome__exact": "success"})
    detail = staff_client.get(f"{LIST}adm-1/change/")

    assert listing.status_code == 200 and b"alice" in listing.content
    assert detail.status_code == 200 and "删除翻译会话" in detail.content.decode()
    assert b'name="_save"' not in detail.content  # a read-only page: no save button


def test_nobody_adds_changes_or_deletes_events(staff_client):
    added = staff_client.post(f"{LIST}add/", {"event_id": "new"})
    changed = staff_client.post(f"{LIST}adm-1/change/", {"message": "rewritten"})
    deleted = staff_client.post(f"{LIST}adm-1/delete/", {"post": "yes"})

    assert added.status_code == 403 and deleted.status_code == 403
    assert changed.status_code in (302, 403)
    assert AuditEvent.objects.get(pk="adm-1").message == "删除翻译会话"
    assert not AuditEvent.objects.filter(pk="new").exists()
