"""The JSON shapes of users and user sessions (docs/api.md §8)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from users.models import User


def timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def user_out(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "status": user.status,
        "preferences": user.preferences,
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.updated_at),
    }


def session_out(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": record["session_id"],
        "user_id": record["user_id"],
        "created_at": timestamp(record["created_at"]),
        "last_seen_at": timestamp(record["last_seen_at"]),
        "expires_at": timestamp(record["expires_at"]),
        "ttl_seconds": record["ttl_seconds"],
        "ip": record["ip"],
        "user_agent": record["user_agent"],
        "data": record["data"],
    }
