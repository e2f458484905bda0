"""Every endpoint of docs/api.md against every kind of key: 401 without one, 403 without the scope,
through with it. One table mirrors the contract; endpoints not routed yet are skipped, and a
routed /api/v1/ endpoint missing from the table fails the suite."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

#: (method, path, scope) — docs/api.md §2-§9. Path parameters name ids that do not exist.
CONTRACT: list[tuple[str, str, str]] = [
    ("POST", "/api/v1/translation/sessions/batch", "write"),
    ("POST", "/api/v1/translation/tasks/batch", "write"),
    ("POST", "/api/v1/translation/flush", "write"),
    ("GET", "/api/v1/translation/sessions", "read"),
    ("GET", "/api/v1/translation/sessions/{session_id}", "read"),
    ("GET", "/api/v1/translation/sessions/{session_id}/tasks", "read"),
    ("GET", "/api/v1/translation/tasks/{task_id}", "read"),
    ("GET", "/api/v1/translation/tasks", "read"),
    ("GET", "/api/v1/translation/stats", "read"),
    ("GET", "/api/v1/translation/recovery/incomplete-sessions", "read"),
    ("POST", "/api/v1/translation/recovery/restore/{session_id}", "write"),
    ("GET", "/api/v1/translation/recovery/status", "read"),
    ("DELETE", "/api/v1/translation/sessions/{session_id}", "admin"),
    ("PATCH", "/api/v1/translation/sessions/{session_id}/status", "write"),
    ("POST", "/api/v1/translation/sessions/cleanup", "admin"),
    ("GET", "/api/v1/system/metrics", "any"),
    ("GET", "/api/v1/system/config", "admin"),
    # §7 files
    ("POST", "/api/v1/storage/files/upload", "write"),
    ("POST", "/api/v1/storage/files/upload-url", "write"),
    ("POST", "/api/v1/storage/files/{file_id}/complete", "write"),
    ("GET", "/api/v1/storage/files", "read"),
    ("GET", "/api/v1/storage/files/{file_id}", "read"),
    ("GET", "/api/v1/storage/files/{file_id}/download", "read"),
    ("DELETE", "/api/v1/storage/files/{file_id}", "write"),
    # §8 users and user sessions
    ("POST", "/api/v1/users", "write"),
    ("GET", "/api/v1/users", "read"),
    ("GET", "/api/v1/users/{user_id}", "read"),
    ("PATCH", "/api/v1/users/{user_id}", "write"),
    ("DELETE", "/api/v1/users/{user_id}", "admin"),
    ("POST", "/api/v1/users/{user_id}/sessions", "write"),
    ("GET", "/api/v1/users/{user_id}/sessions", "read"),
    ("DELETE", "/api/v1/users/{user_id}/sessions", "write"),
    ("POST", "/api/v1/users/sessions/validate", "read"),
    ("GET", "/api/v1/users/sessions/{session_id}", "read"),
    ("DELETE", "/api/v1/users/sessions/{session_id}", "write"),
    ("POST", "/api/v1/users/sessions/{session_id}/refresh", "write"),
    # §9 audit logs
    ("POST", "/api/v1/audit/logs/batch", "write"),
    ("GET", "/api/v1/audit/logs", "admin"),
    ("GET", "/api/v1/audit/logs/export", "admin"),
    ("GET", "/api/v1/audit/stats", "admin"),
]
KEY_KINDS = ["read", "write", "read,write", "admin"]
ALLOWS = {
    "read": {"read"},
    "write": {"write"},
    "read,write": {"read", "write"},
    "admin": {"read", "write", "admin"},
}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}|<[^>]+>", "{}", path)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-id", path)


def _routes(patterns=None, prefix: str = "/") -> Iterator[tuple[str, object]]:
    """(path template, view callback) of every URL in the URLconf."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _methods(callback) -> set[str]:
    """The HTTP methods a routed view implements (DRF views and viewsets)."""
    actions = getattr(callback, "actions", None)
    if actions:
        return {method.upper() for method in actions}
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        return {"<not a class-based view>"}
    return {m.upper() for m in cls.http_method_names if m not in ("options", "head") and hasattr(cls, m)}


def _api_operations() -> dict[tuple[str, str], object]:
    operations = {}
    for route, callback in _routes():
        if route.startswith("/api/v1/"):
            for method in _methods(callback):
                operations[method, _template(route)] = callback
    return operations


def _skip_unless_routed(method: str, path: str) -> None:
    if (method, _template(path)) not in _api_operations():
        pytest.skip(f"{method} {path} is not routed yet")


def _call(client, method: str, path: str, key: str | None):
    headers = {"X-API-Key": key} if key else {}
    return client.generic(method, _concrete(path), b"{}", content_type="application/json", headers=headers)


def test_every_routed_api_operation_is_in_the_contract_table():
    table = {(method, _template(path)) for method, path, _ in CONTRACT}

    unlisted = sorted(set(_api_operations()) - table)

    assert unlisted == [], "add these to CONTRACT (and docs/api.md) with their scope"


def test_every_routed_api_view_is_a_drf_view_so_the_key_check_applies():
    plain = sorted(path for (method, path) in _api_operations() if method == "<NOT A CLASS-BASED VIEW>")

    assert plain == []


@pytest.mark.parametrize(("method", "path", "scope"), CONTRACT, ids=[f"{m} {p}" for m, p, _ in CONTRACT])
def test_no_key_is_401(client, auth_enabled, write_buffer, method, path, scope):
    _skip_unless_routed(method, path)

    response = _call(client, method, path, key=None)

    assert response.status_code == 401, response.content
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


_CASES = [(m, p, s, kind) for m, p, s in CONTRACT for kind in KEY_KINDS]


@pytest.mark.parametrize(
    ("method", "path", "scope", "kind"), _CASES, ids=[f"{m} {p} [{k}]" for m, p, _, k in _CASES]
)
def test_key_passes_exactly_when_it_holds_the_scope(
    client, auth_enabled, write_buffer, make_api_key, method, path, scope, kind
):
    _skip_unless_routed(method, path)
    allowed = scope == "any" or scope in ALLOWS[kind]

    response = _call(client, method, path, key=make_api_key(kind))

    if allowed:
        assert response.status_code not in (401, 403), response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error_code"] == "PERMISSION_DENIED"
