"""The embedded store of user sessions (a table): the same behaviour as the Redis plugin."""

from __future__ import annotations

import time

import pytest

from storage_backends.db_sessions import DatabaseUserSessions, sweep_expired
from users.models import UserSessionRow

pytestmark = pytest.mark.django_db


def test_create_validate_touch_end():
    store = DatabaseUserSessions()
    record, token = store.create(user_id="u1", ttl_seconds=60, max_per_user=10)
    assert store.by_token(token)["session_id"] == record["session_id"]
    assert not UserSessionRow.objects.filter(token_hash=token).exists()
    touched = store.by_token(token, touch=True)
    assert touched["expires_at"] >= record["expires_at"]
    assert store.end(record["session_id"]) and store.by_token(token) is None


def test_expired_sessions_are_not_answered_and_are_swept():
    store = DatabaseUserSessions()
    record, token = store.create(user_id="u2", ttl_seconds=1, max_per_user=10)
    time.sleep(1.05)
    assert store.by_token(token) is None and store.get(record["session_id"]) is None
    assert store.list_for_user("u2") == []
    assert sweep_expired() == 1


def test_the_cap_evicts_the_soonest_expiring():
    store = DatabaseUserSessions()
    made = [store.create(user_id="u3", ttl_seconds=100 + n, max_per_user=2)[0] for n in range(3)]
    assert [s["session_id"] for s in store.list_for_user("u3")] == [m["session_id"] for m in made[1:]]
    assert store.end_all("u3") == 2


def test_creates_sweep_the_whole_table_once_the_interval_has_passed(monkeypatch):
    store = DatabaseUserSessions()
    store.create(user_id="u4", ttl_seconds=1, max_per_user=10)
    time.sleep(1.05)
    monkeypatch.setattr(store, "_next_sweep", 0.0)
    store.create(user_id="u5", ttl_seconds=60, max_per_user=10)
    assert list(UserSessionRow.objects.values_list("user_id", flat=True)) == ["u5"]
