"""The user-session endpoints of docs/api.md §8 on the Redis plugin (real Redis)."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

pytestmark = pytest.mark.django_db


def _start(api_client, user, **body) -> dict:
    response = api_client.post(f"/api/v1/users/{user['user_id']}/sessions", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _validate(api_client, token, touch=False):
    return api_client.post("/api/v1/users/sessions/validate", {"token": token, "touch": touch}, format="json")


def test_create_answers_the_session_with_its_token(api_client, user):
    session = _start(api_client, user, ttl_seconds=600, ip="10.0.0.1", user_agent="ua", data={"k": "v"})
    assert len(session["token"]) >= 43 and session["ttl_seconds"] == 600
    assert session["ip"] == "10.0.0.1" and session["data"] == {"k": "v"}
    assert session["expires_at"] > session["created_at"]
    fetched = api_client.get(f"/api/v1/users/sessions/{session['session_id']}").json()
    assert fetched == {key: value for key, value in session.items() if key != "token"}


def test_validate_answers_session_and_user(api_client, user):
    session = _start(api_client, user)
    body = _validate(api_client, session["token"]).json()
    assert body["session"]["session_id"] == session["session_id"] and "token" not in body["session"]
    assert body["user"] == user


def test_unknown_token_is_404(api_client):
    assert _validate(api_client, "nope").status_code == 404


def test_create_for_unknown_user_is_404_and_for_disabled_user_409(api_client, user):
    assert api_client.post("/api/v1/users/ghost/sessions", {}, format="json").status_code == 404
    api_client.patch(f"/api/v1/users/{user['user_id']}", {"status": "disabled"}, format="json")
    response = api_client.post(f"/api/v1/users/{user['user_id']}/sessions", {}, format="json")
    assert response.status_code == 409 and response.json()["error_code"] == "CONFLICT"


@pytest.mark.parametrize("ttl", [0, 30 * 86_400 + 1, "60", 1.5])
def test_ttl_out_of_range_or_wrong_type_is_422(api_client, user, ttl):
    response = api_client.post(
        f"/api/v1/users/{user['user_id']}/sessions", {"ttl_seconds": ttl}, format="json"
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "ttl_seconds"


def test_disabling_a_user_refuses_its_tokens_at_once(api_client, user):
    token = _start(api_client, user)["token"]
    assert _validate(api_client, token).status_code == 200
    api_client.patch(f"/api/v1/users/{user['user_id']}", {"status": "disabled"}, format="json")
    assert _validate(api_client, token).status_code == 404


def test_a_session_expires_by_its_ttl(api_client, user):
    session = _start(api_client, user, ttl_seconds=1)
    time.sleep(1.1)
    assert _validate(api_client, session["token"]).status_code == 404
    assert api_client.get(f"/api/v1/users/sessions/{session['session_id']}").status_code == 404
    assert api_client.get(f"/api/v1/users/{user['user_id']}/sessions").json()["count"] == 0


def test_touch_slides_the_expiry(api_client, user):
    session = _start(api_client, user, ttl_seconds=2)
    for _ in range(3):  # 3 s in all: past the ttl, alive because each touch slides it
        time.sleep(1)
        assert _validate(api_client, session["token"], touch=True).status_code == 200
    time.sleep(2.1)
    assert _validate(api_client, session["token"]).status_code == 404


def test_validate_without_touch_does_not_slide(api_client, user):
    session = _start(api_client, user, ttl_seconds=60)
    body = _validate(api_client, session["token"]).json()
    assert body["session"]["expires_at"] == session["expires_at"]


def test_refresh_answers_a_later_expiry(api_client, user):
    session = _start(api_client, user, ttl_seconds=60)
    time.sleep(0.05)
    refreshed = api_client.post(f"/api/v1/users/sessions/{session['session_id']}/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["expires_at"] > session["expires_at"]
    assert api_client.post("/api/v1/users/sessions/gone/refresh").status_code == 404


def test_end_one_and_end_all(api_client, user):
    first, second, third = (_start(api_client, user) for _ in range(3))
    assert api_client.delete(f"/api/v1/users/sessions/{first['session_id']}").status_code == 200
    assert api_client.delete(f"/api/v1/users/sessions/{first['session_id']}").status_code == 404
    assert _validate(api_client, first["token"]).status_code == 404
    listed = api_client.get(f"/api/v1/users/{user['user_id']}/sessions").json()
    assert listed["count"] == 2
    assert {s["session_id"] for s in listed["sessions"]} == {second["session_id"], third["session_id"]}
    assert api_client.delete(f"/api/v1/users/{user['user_id']}/sessions").json() == {"deleted": 2}
    assert _validate(api_client, third["token"]).status_code == 404


def test_the_per_user_cap_evicts_the_oldest(api_client, user, settings):
    settings.USER_SESSIONS_PER_USER = 3
    sessions = [_start(api_client, user, ttl_seconds=600 + n) for n in range(4)]
    assert _validate(api_client, sessions[0]["token"]).status_code == 404
    live = api_client.get(f"/api/v1/users/{user['user_id']}/sessions").json()
    assert {s["session_id"] for s in live["sessions"]} == {s["session_id"] for s in sessions[1:]}


def test_the_token_is_never_stored_in_clear(api_client, user):
    session = _start(api_client, user, data={"note": "x"})
    client = redis.Redis.from_url(settings.USER_SESSIONS_REDIS_URL)
    token = session["token"].encode()
    for key in client.scan_iter(match=f"{settings.USER_SESSIONS_KEY_PREFIX}*"):
        assert token not in key
        kind = client.type(key)
        if kind == b"hash":
            values = [item for pair in client.hgetall(key).items() for item in pair]
        elif kind == b"string":
            values = [client.get(key)]
        else:
            assert kind == b"zset"
            values = client.zrange(key, 0, -1)
        assert all(token not in value for value in values)


def test_redis_down_is_503_for_session_calls_while_user_reads_are_served(api_client, user, settings):
    # given both Redis URLs pointing at a closed port
    from storage_backends import read_cache, redis_sessions

    settings.USER_SESSIONS_REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        response = api_client.post(f"/api/v1/users/{user['user_id']}/sessions", {}, format="json")
        assert response.status_code == 503 and response.json()["error_code"] == "STORAGE_UNAVAILABLE"
        assert _validate(api_client, "x").status_code == 503
        assert api_client.get(f"/api/v1/users/{user['user_id']}").json()["username"] == user["username"]
        # a user write is refused rather than leaving caches that could not be told of it
        refused = api_client.patch(f"/api/v1/users/{user['user_id']}", {"display_name": "x"}, format="json")
        assert refused.status_code == 503 and refused.json()["error_code"] == "STORAGE_UNAVAILABLE"
        assert api_client.get(f"/api/v1/users/{user['user_id']}").json()["display_name"] == ""
    finally:
        redis_sessions._client.cache_clear()
        read_cache._client.cache_clear()


def test_concurrent_creates_never_exceed_the_cap(user):
    from concurrent.futures import ThreadPoolExecutor

    from storage_backends.user_sessions import user_session_store

    store = user_session_store()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: store.create(user_id=user["user_id"], ttl_seconds=60, max_per_user=5), range(40)
            )
        )
    assert len(store.list_for_user(user["user_id"])) == 5
