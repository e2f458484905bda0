"""The client's user and user-session calls against the live service (sync and async)."""

from __future__ import annotations

import asyncio

import pytest

from persistence_client import AsyncPersistenceClient, Conflict, NotFound, PersistenceClient

# The live service uses the test database; the mark makes pytest-django set it up.
pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_sync_user_and_session_calls(live, uid):
    with PersistenceClient(live.url, api_key=live.key) as client:
        user = client.create_user({"user_id": f"u{uid}", "username": f"n{uid}", "email": f"{uid}@x.org"})
        with pytest.raises(Conflict) as taken:
            client.create_user({"username": f"n{uid}"})
        assert taken.value.status == 409 and taken.value.errors[0]["field"] == "username"
        assert client.update_user(user["user_id"], {"display_name": "Ada"})["display_name"] == "Ada"
        assert client.get_user(user["user_id"])["display_name"] == "Ada"
        assert [u["user_id"] for u in client.iter_users(q=f"n{uid}")] == [user["user_id"]]
        session = client.create_user_session(user["user_id"], ttl_seconds=600)
        assert (
            client.validate_user_session(session["token"], touch=True)["user"]["user_id"] == user["user_id"]
        )
        assert client.refresh_user_session(session["session_id"])["session_id"] == session["session_id"]
        client.end_user_session(session["session_id"])
        with pytest.raises(NotFound):
            client.validate_user_session(session["token"])
        client.create_user_session(user["user_id"])
        assert client.end_user_sessions(user["user_id"]) == {"deleted": 1}


def test_async_user_and_session_calls(live, uid):
    async def scenario() -> None:
        async with AsyncPersistenceClient(live.url, api_key=live.key) as client:
            user = await client.create_user({"username": f"a{uid}"})
            assert (await client.get_user(user["user_id"]))["username"] == f"a{uid}"
            assert (await client.update_user(user["user_id"], {"status": "active"}))["status"] == "active"
            assert [u["user_id"] async for u in client.iter_users(q=f"a{uid}")] == [user["user_id"]]
            session = await client.create_user_session(user["user_id"])
            assert (await client.validate_user_session(session["token"]))["session"]["session_id"] == session[
                "session_id"
            ]
            await client.refresh_user_session(session["session_id"])
            await client.end_user_session(session["session_id"])
            assert await client.end_user_sessions(user["user_id"]) == {"deleted": 0}

    asyncio.run(scenario())
