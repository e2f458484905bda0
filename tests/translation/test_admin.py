"""The Django admin of sessions and tasks, through Django's test client (the browser test drives it live)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import session_record, task_record
from tests.recovery.stored import store_session, store_tasks
from translation.models import Session, Task

pytestmark = pytest.mark.django_db(transaction=True)
SESSIONS_URL = reverse("admin:translation_session_changelist")
TASKS_URL = reverse("admin:translation_task_changelist")


def test_sessions_list_filters_by_status_and_provider(admin_client, write_buffer):
    store_session("a", status="processing", llm_provider="openai")
    store_session("b", status="completed", llm_provider="openai")
    store_session("c", status="processing", llm_provider="qwen")

    page = admin_client.get(SESSIONS_URL, {"status__exact": "processing", "llm_provider": "qwen"})

    assert page.status_code == 200
    assert [s.session_id for s in page.context["cl"].result_list] == ["c"]


@pytest.mark.parametrize(("term", "found"), [("sess-ab", ["sess-abc"]), ("level_2", ["sess-xyz"])])
def test_sessions_search_by_id_prefix_and_filename(admin_client, write_buffer, term, found):
    store_session("sess-abc", filename="level_1.xlsx")
    store_session("sess-xyz", filename="level_2.xlsx")

    page = admin_client.get(SESSIONS_URL, {"q": term})

    assert [s.session_id for s in page.context["cl"].result_list] == found


def test_sessions_list_shows_progress_and_a_link_to_the_tasks(admin_client, write_buffer):
    store_session("s-1", total_tasks=4, completed_tasks=1)

    html = admin_client.get(SESSIONS_URL).content.decode()

    assert '<progress max="100" value="25.0"></progress> 25.0 %' in html
    assert f'href="{TASKS_URL}?session__exact=s-1"' in html


def test_tasks_of_one_session_are_ordered_by_row(admin_client, write_buffer):
    store_session("s-1")
    store_session("s-2")
    store_tasks("s-1", 1, row_index=5, task_id="t-b")
    store_tasks("s-1", 1, row_index=1, task_id="t-a")
    store_tasks("s-2", 1, row_index=0, task_id="t-other")

    page = admin_client.get(TASKS_URL, {"session__exact": "s-1"})

    assert [t.task_id for t in page.context["cl"].result_list] == ["t-a", "t-b"]


def test_tasks_list_never_counts_the_whole_table(admin_client, write_buffer):
    store_session("s-1")
    store_tasks("s-1", 3)

    with CaptureQueriesContext(connection) as ctx:
        page = admin_client.get(TASKS_URL)

    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert page.status_code == 200
    assert counts and all("LIMIT 10001" in sql for sql in counts)


def test_tasks_are_read_only_in_the_admin(admin_client, write_buffer):
    store_session("s-1")
    (task_id,) = store_tasks("s-1", 1)

    page = admin_client.get(reverse("admin:translation_task_change", args=[task_id]))

    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert not page.context["has_delete_permission"]


def test_delete_action_asks_with_counts_not_a_list_of_tasks(admin_client, write_buffer):
    store_session("s-1")
    store_tasks("s-1", 300)

    with CaptureQueriesContext(connection) as ctx:
        page = admin_client.post(SESSIONS_URL, {"action": "delete_sessions", "_selected_action": ["s-1"]})

    html = " ".join(page.content.decode().split())
    assert "Delete <strong>1</strong> session with <strong>300</strong> stored tasks?" in html
    assert "Hello traveller" not in html
    assert len(ctx.captured_queries) < 15
    assert Session.objects.filter(pk="s-1").exists()


def test_delete_action_goes_through_the_service(admin_client, write_buffer):
    store_session("s-1")
    store_tasks("s-1", 5)
    write_buffer.add("translation_tasks", [task_record("s-1")])

    page = admin_client.post(
        SESSIONS_URL,
        {"action": "delete_sessions", "_selected_action": ["s-1"], "post": "yes"},
        follow=True,
    )

    assert "Deleted 1 session and 6 tasks" in page.content.decode()
    assert not Session.objects.exists() and not Task.objects.exists()
    assert write_buffer.counts()["translation_tasks"] == 0


def test_the_change_pages_delete_goes_through_the_service(admin_client, write_buffer):
    write_buffer.add("translation_sessions", [session_record("s-1")])
    store_session("s-1")
    store_tasks("s-1", 3)
    url = reverse("admin:translation_session_delete", args=["s-1"])

    confirm = admin_client.get(url)
    admin_client.post(url, {"post": "yes"})

    assert "3 tasks of this session" in confirm.content.decode()
    assert not Session.objects.exists() and not Task.objects.exists()
    assert write_buffer.get("translation_sessions", "s-1") is None


def test_django_delete_selected_is_not_offered(admin_client, write_buffer):
    store_session("s-1")

    actions = admin_client.get(SESSIONS_URL).context["action_form"].fields["action"].choices

    assert "delete_selected" not in [name for name, _ in actions]
    assert "delete_sessions" in [name for name, _ in actions]
