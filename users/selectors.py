"""Reads of users and user sessions, users through the two-level read cache (docs/api.md §8).

user = user_get(user_id="u1")                    # the rendered user; 404 NotFound
page = users_page(query=request.query_params)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.db.models import Q

from core.errors import InvalidQuery, NotFound
from core.pagination import form_errors, page_of, page_params
from storage_backends.read_cache import ReadCache
from storage_backends.user_sessions import user_session_store
from users.models import User, UserStatus
from users.representation import session_out, user_out

USER_CACHE = ReadCache("user")
USER_LIST_CACHE = ReadCache("user_list")
#: The version key every user list depends on; any user write replaces it.
LIST_VERSION = "users"


def user_version(user_id: str) -> str:
    return f"user:{user_id}"


def user_not_found(user_id: str) -> NotFound:
    return NotFound("User not found", extra={"user_id": user_id})


def _load_user(user_id: str) -> dict[str, Any] | None:
    user = User.objects.filter(user_id=user_id).first()
    return user_out(user) if user is not None else None


def user_find(*, user_id: str) -> dict[str, Any] | None:
    """The rendered user or None (cached, never stale; an unknown id is cached as None too)."""
    return USER_CACHE.get(user_version(user_id), lambda: _load_user(user_id))


def user_get(*, user_id: str) -> dict[str, Any]:
    user = user_find(user_id=user_id)
    if user is None:
        raise user_not_found(user_id)
    return user


class UserListForm(forms.Form):
    status = forms.ChoiceField(choices=UserStatus.choices, required=False)
    q = forms.CharField(required=False, strip=False, max_length=254)


def users_page(*, query: Mapping[str, Any]) -> dict[str, Any]:
    """A page of users by username (ties by user_id). ``q``: a prefix of the username or of the
    email (case-insensitively), each served by its unique index (a range scan, not a table scan)."""
    params = page_params(query)
    form = UserListForm(query)
    if not form.is_valid():
        raise InvalidQuery("Invalid query parameters.", errors=form_errors(form))
    status, q = form.cleaned_data["status"], form.cleaned_data["q"]

    def load() -> dict[str, Any]:
        users = User.objects.all()
        if status:
            users = users.filter(status=status)
        if q:
            # Two prefix ranges, one per unique index (MariaDB merges them: index_merge sort_union).
            users = users.filter(Q(username__istartswith=q) | Q(email_key__istartswith=q.lower()))
        return page_of(users.order_by("username", "user_id"), params, render=user_out)

    return USER_LIST_CACHE.get(LIST_VERSION, load, key=f"{status}|{q}|{params.page}|{params.page_size}")


def user_session_get(*, session_id: str) -> dict[str, Any]:
    record = user_session_store().get(session_id)
    if record is None:
        raise NotFound("User session not found", extra={"session_id": session_id})
    return session_out(record)


def user_sessions_list(*, user_id: str) -> dict[str, Any]:
    user_get(user_id=user_id)
    sessions = [session_out(record) for record in user_session_store().list_for_user(user_id)]
    return {"count": len(sessions), "sessions": sessions}
