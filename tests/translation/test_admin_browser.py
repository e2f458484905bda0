"""The admin as an operator uses it: a real headless Chromium against a live gunicorn.

Log in, filter sessions, open one, follow to its tasks, delete it with the action, and see it gone
from the API (and not brought back by a flush).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.factories import task_record
from tests.processes import GunicornServer
from tests.recovery.stored import store_session, store_tasks

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed"
    ),
]


@pytest.fixture
def seeded(write_buffer, django_user_model):
    """An operator account, the session to delete (stored and buffered tasks) and two others.

    Written before the browser starts: Playwright's sync API runs an event loop in this thread,
    and Django refuses database calls from a thread with a running loop.
    """
    django_user_model.objects.create_superuser("operator", "op@example.com", "s3cret-pass")
    store_session(
        "s-target", status="processing", llm_provider="openai", filename="level_9.xlsx", total_tasks=30
    )
    store_tasks("s-target", 30, status="pending")
    write_buffer.add("translation_tasks", [task_record("s-target", "t-buffered", status="pending")])
    store_session("s-done", status="completed", llm_provider="openai")
    store_session("s-qwen", status="processing", llm_provider="qwen")


@pytest.fixture
def server(seeded):
    with GunicornServer() as live:
        yield live


@pytest.fixture
def browser(seeded, server):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_operator_finds_a_session_follows_to_its_tasks_and_deletes_it(server, browser):
    page = browser.new_page()
    page.set_default_timeout(15_000)

    # log in
    page.goto(server.url + "/admin/login/?next=/admin/translation/session/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "s3cret-pass")
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/translation/session/$"))

    # filter: processing sessions of the openai provider
    page.click("#changelist-filter a[href*='status__exact=processing']")
    page.wait_for_url(re.compile(r"status__exact=processing"))
    page.click("#changelist-filter a[href*='llm_provider=openai']")
    page.wait_for_url(re.compile(r"llm_provider=openai"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("s-target")

    # open the session, then follow to its tasks
    page.click("#result_list a:text-is('s-target')")
    page.wait_for_url(re.compile(r"/admin/translation/session/s-target/change/"))
    expect(page.locator("#content")).to_contain_text("level_9.xlsx")
    page.click("a.tasks-link")
    page.wait_for_url(re.compile(r"/admin/translation/task/\?session__exact=s-target"))
    expect(page.locator("#result_list tbody tr")).to_have_count(30)

    # delete it with the action, through the confirmation page
    page.goto(server.url + "/admin/translation/session/")
    page.check("#result_list input[name=_selected_action][value='s-target']")
    page.select_option("select[name=action]", "delete_sessions")
    page.click("button[name=index]")
    expect(page.locator("#delete-summary")).to_contain_text("30 stored tasks")
    page.click("input[type=submit][value^='Yes']")
    expect(page.locator("ul.messagelist")).to_contain_text("Deleted 1 session and 31 tasks")
    expect(page.locator("#result_list")).not_to_contain_text("s-target")
    expect(page.locator("#result_list")).to_contain_text("s-qwen")

    # then: gone from the API, also after a flush
    api = server.url + "/api/v1/translation"
    assert httpx.post(f"{api}/flush", timeout=10).status_code == 200
    assert httpx.post(f"{api}/recovery/restore/s-target", timeout=10).status_code == 404
    assert httpx.get(f"{api}/sessions/s-target", timeout=10).status_code == 404
    assert httpx.get(f"{api}/tasks", params={"session_id": "s-target"}, timeout=10).json()["total"] == 0
    incomplete = httpx.get(f"{api}/recovery/incomplete-sessions", timeout=10).json()
    assert [s["session_id"] for s in incomplete["sessions"]] == ["s-qwen"]
