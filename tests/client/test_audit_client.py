"""The client's audit calls (persist_audit_logs, search_audit_logs, export_audit_logs, audit_stats),
sync and async, against the live service (gunicorn on the test MariaDB, the SQL search backend)."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from persistence_client import AsyncPersistenceClient, AuthError, PersistenceClient

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture(scope="module")
def admin_key(live, django_db_blocker):
    from api_keys.services import api_key_create

    with django_db_blocker.unblock():
        _, secret = api_key_create(name="client-tests-admin", scopes="admin")
    return secret


def _event(uid: str, i: int, **overrides) -> dict:
    return {
        "actor_id": uid,
        "actor_type": "service",
        "action": "client.write" if i % 2 else "client.read",
        "outcome": "success",
        "message": f"event {i} of 翻译会话",
        "timestamp": f"2026-03-10T12:{i // 60:02d}:{i % 60:02d}Z",
    } | overrides


def test_persist_then_search_export_and_stats(live, uid, admin_key):
    with PersistenceClient(live.url, api_key=live.key, batch_size=100, flush_interval=60) as writer:
        writer.persist_audit_logs([_event(uid, i) for i in range(250)])
        writer.flush()
        assert writer.counters.batches_sent["logs"] == 3

    with PersistenceClient(live.url, api_key=admin_key) as admin:
        found = list(admin.search_audit_logs(actor_id=uid, page_size=40))
        writes = list(
            admin.search_audit_logs(actor_id=uid, action="client.*", q="翻译", order="asc", page_size=100)
        )
        exported = list(admin.export_audit_logs(actor_id=uid))
        csv_body = b"".join(admin.export_audit_logs(actor_id=uid, format="csv", order="desc"))
        stats = admin.audit_stats(actor_id=uid, from_="2026-03-10T12:01:00Z")

    assert len(found) == 250 and len({e["event_id"] for e in found}) == 250
    assert [e["timestamp"] for e in found] == sorted((e["timestamp"] for e in found), reverse=True)
    assert len(writes) == 250
    assert [e["event_id"] for e in exported] == [e["event_id"] for e in reversed(found)]
    rows = list(csv.reader(io.StringIO(csv_body.decode(), newline="")))
    assert len(rows) == 251 and rows[1][0] == found[0]["event_id"]
    assert stats["total"] == 190 and stats["by_action"] == {"client.read": 95, "client.write": 95}


def test_a_resent_event_keeps_its_first_version(live, uid, admin_key):
    with PersistenceClient(live.url, api_key=live.key, flush_interval=60) as writer:
        writer.persist_audit_logs([_event(uid, 1, event_id=f"{uid}-once", message="first")])
        writer.flush()
        writer.persist_audit_logs([_event(uid, 1, event_id=f"{uid}-once", message="second")])
        writer.flush()

    with PersistenceClient(live.url, api_key=admin_key) as admin:
        assert [e["message"] for e in admin.search_audit_logs(actor_id=uid)] == ["first"]


def test_searching_needs_the_admin_scope(live, uid):
    with PersistenceClient(live.url, api_key=live.key) as client, pytest.raises(AuthError):
        list(client.search_audit_logs(actor_id=uid))


def test_the_async_client_does_the_same(live, uid, admin_key):
    async def scenario():
        async with AsyncPersistenceClient(
            live.url, api_key=live.key, batch_size=50, flush_interval=60
        ) as writer:
            await writer.persist_audit_logs([_event(uid, i) for i in range(120)])
            await writer.flush()
        async with AsyncPersistenceClient(live.url, api_key=admin_key) as admin:
            found = [e async for e in admin.search_audit_logs(actor_id=uid, page_size=50)]
            exported = [e async for e in admin.export_audit_logs(actor_id=uid, action="client.write")]
            stats = await admin.audit_stats(actor_id=uid)
        return found, exported, stats

    found, exported, stats = asyncio.run(scenario())

    assert len(found) == 120 and len({e["event_id"] for e in found}) == 120
    assert len(exported) == 60 and all(e["action"] == "client.write" for e in exported)
    assert stats["total"] == 120
