"""The lean routes (core.lean, users.api.lean) answer exactly as the DRF views they stand in for.

Every request of the matrices below goes through the WSGI application gunicorn serves
(persistence_site.wsgi.application) twice: with ``LEAN_ROUTES_ENABLED`` off (the full stack and
the DRF view, the behaviour before the lean path existed) and on. Both answers must agree in
status, body, every header, the django-prometheus series they move, the access log line and
Django's 4xx/5xx log line; and each request is checked to have taken the path it should (a plain
request the lean one, anything else DRF), so the comparison never compares DRF with itself by
accident.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings
from django.urls import resolve
from prometheus_client import REGISTRY
from rest_framework.views import APIView

from api_keys.services import api_key_create
from persistence_site.wsgi import application
from users.api import lean as users_lean

pytestmark = pytest.mark.django_db

RATES_OFF = {"api_key": "off", "client_ip": "off", "auth_failure": "off"}
VALIDATE = "/api/v1/users/sessions/validate"


@pytest.fixture(autouse=True)
def _keys_on(settings):
    settings.API_AUTH_ENABLED = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": RATES_OFF}


@pytest.fixture(autouse=True)
def _keep_the_test_transaction() -> Iterator[None]:
    """As Django's test client does: requests must not close the connection holding the test's
    transaction (close_old_connections on request_started/finished)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def drf_dispatches(monkeypatch) -> list[str]:
    """The paths DRF's APIView.dispatch served (the full path), as they happen."""
    seen: list[str] = []
    original = APIView.dispatch

    def dispatch(self, request, *args, **kwargs):
        seen.append(request.path)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(APIView, "dispatch", dispatch)
    return seen


@pytest.fixture
def keys(db) -> dict[str, str]:
    return {
        scopes: api_key_create(name=f"lean-{scopes}", scopes=scopes)[1]
        for scopes in ("read", "write", "admin")
    }


@pytest.fixture
def user_and_token(uid) -> tuple[str, str]:
    from users.services import user_create, user_session_create

    user_id = f"lean-{uid}"
    user_create(user_id=user_id, username=user_id, email=f"{uid}@example.com", preferences={"l": "fr"})
    return user_id, user_session_create(user_id=user_id, ttl_seconds=3600)["token"]


def environ(method: str, path: str, *, body: bytes | None = None, query: str = "", **headers: str) -> dict:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.errors": io.StringIO(),
        "wsgi.input": io.BytesIO(body or b""),
    }
    if body is not None:
        env["CONTENT_LENGTH"] = str(len(body))
        env["CONTENT_TYPE"] = "application/json"
    for name, value in headers.items():
        if value is None:
            env.pop(name, None)
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[name] = value
        else:
            env[f"HTTP_{name}"] = value
    return env


def _django_series() -> dict[tuple[str, tuple], float]:
    """django-prometheus's samples, but not what depends on timing (latency sums and buckets)."""
    series = {}
    for metric in REGISTRY.collect():
        if not metric.name.startswith("django_http"):
            continue
        for sample in metric.samples:
            timing = "latency" in sample.name and not sample.name.endswith("_count")
            if timing or sample.name.endswith("_created"):
                continue
            series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return series


def _delta(before: dict, after: dict) -> dict:
    return {key: value - before.get(key, 0) for key, value in after.items() if value != before.get(key, 0)}


def serve(
    env: dict, *, lean: bool, drf_dispatches: list[str], caplog, app: Any = application
) -> dict[str, Any]:
    """One request through the WSGI application; what a client and an operator see of it."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = status, headers

    caplog.clear()
    before, dispatched = _django_series(), len(drf_dispatches)
    with override_settings(LEAN_ROUTES_ENABLED=lean), caplog.at_level(logging.INFO):
        result = app({**env, "wsgi.input": io.BytesIO(env["wsgi.input"].getvalue())}, start_response)
        try:
            answer["body"] = b"".join(result)
        finally:
            result.close()
    answer["metrics"] = _delta(before, _django_series())
    answer["drf"] = len(drf_dispatches) > dispatched
    answer["logs"] = [
        (record.name, record.levelname, record.getMessage(), getattr(record, "status", None))
        for record in caplog.records
        if record.name in ("persistence.access", "django.request", "django.security.DisallowedHost")
    ]
    return answer


def assert_same(
    env: dict,
    drf_dispatches,
    caplog,
    *,
    lean_path: bool | None,
    volatile: tuple[str, ...] = (),
    app: Any = application,
) -> dict:
    """The request answered identically by both paths; ``lean_path``: the lean one served it
    (None: no view does, the full stack answers before or without one)."""
    old = serve(env, lean=False, drf_dispatches=drf_dispatches, caplog=caplog, app=app)
    new = serve(env, lean=True, drf_dispatches=drf_dispatches, caplog=caplog, app=app)
    if lean_path is None:
        assert not old["drf"] and not new["drf"]
    else:
        assert old["drf"], "the full path must reach the DRF view"
        assert new["drf"] is not lean_path, f"expected the {'lean' if lean_path else 'DRF'} path"
    assert new["status"] == old["status"]
    old_headers, new_headers = _headers(old["headers"]), _headers(new["headers"])
    if old_headers["X-Request-ID"] != env.get("HTTP_X_REQUEST_ID"):  # made up per request: same form
        assert len(new_headers.pop("X-Request-ID")) == len(old_headers.pop("X-Request-ID")) == 32
    assert new["headers"] and [name for name, _ in new["headers"]] == [name for name, _ in old["headers"]]
    assert new_headers == old_headers
    if volatile:
        import orjson

        old_body, new_body = orjson.loads(old["body"]), orjson.loads(new["body"])
        for key in volatile:
            section, _, field = key.partition(".")
            old_body[section].pop(field), new_body[section].pop(field)
        assert new_body == old_body
    else:
        assert new["body"] == old["body"]
    assert new["metrics"] == old["metrics"] and old["metrics"]
    assert new["logs"] == old["logs"]
    return new


def _headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """As a dict, a new CSRF cookie's random value and expiry left out (a malformed one sent gets a
    new one, expiring a year from the second it was made)."""
    return {
        name: re.sub(r"expires=[^;]+;", "expires=...;", re.sub(r"csrftoken=\w+;", "csrftoken=...;", value))
        for name, value in headers
    }


# --- POST /api/v1/users/sessions/validate ---------------------------------------------------------


def _validate_cases(token: str, keys: dict[str, str]) -> list[tuple[str, dict, bool]]:
    read = keys["read"]
    ok = f'{{"token": "{token}"}}'.encode()
    return [
        ("ok", environ("POST", VALIDATE, body=ok, X_API_KEY=read, X_REQUEST_ID="req-1"), True),
        ("ok, request id made up", environ("POST", VALIDATE, body=ok, X_API_KEY=read), True),
        ("ok, bad request id", environ("POST", VALIDATE, body=ok, X_API_KEY=read, X_REQUEST_ID="a b"), True),
        ("admin key", environ("POST", VALIDATE, body=ok, X_API_KEY=keys["admin"]), True),
        ("ok, Accept */*", environ("POST", VALIDATE, body=ok, X_API_KEY=read, ACCEPT="*/*"), True),
        (
            "ok, Accept json",
            environ("POST", VALIDATE, body=ok, X_API_KEY=read, ACCEPT="application/json"),
            True,
        ),
        (
            "ok, charset",
            environ(
                "POST", VALIDATE, body=ok, X_API_KEY=read, CONTENT_TYPE="application/json; charset=utf-8"
            ),
            True,
        ),
        ("unknown token", environ("POST", VALIDATE, body=b'{"token": "nope"}', X_API_KEY=read), True),
        ("no key", environ("POST", VALIDATE, body=ok), True),
        ("key without a dot", environ("POST", VALIDATE, body=ok, X_API_KEY="garbage"), True),
        ("unknown key", environ("POST", VALIDATE, body=ok, X_API_KEY="AbCd1234.secret"), True),
        ("wrong secret", environ("POST", VALIDATE, body=ok, X_API_KEY=read.split(".")[0] + ".x"), True),
        ("write-only key", environ("POST", VALIDATE, body=ok, X_API_KEY=keys["write"]), True),
        ("malformed JSON", environ("POST", VALIDATE, body=b'{"token": ', X_API_KEY=read), True),
        ("empty body", environ("POST", VALIDATE, body=b"", X_API_KEY=read), True),
        ("not an object", environ("POST", VALIDATE, body=b"[1]", X_API_KEY=read), True),
        ("wrong type", environ("POST", VALIDATE, body=b'{"token": 5}', X_API_KEY=read), True),
        ("unknown field", environ("POST", VALIDATE, body=b'{"token": "x", "y": 1}', X_API_KEY=read), True),
        (
            "token too long",
            environ("POST", VALIDATE, body=b'{"token": "' + b"x" * 300 + b'"}', X_API_KEY=read),
            True,
        ),
        (
            "touch not a bool",
            environ("POST", VALIDATE, body=b'{"token": "x", "touch": 1}', X_API_KEY=read),
            True,
        ),
        ("text/plain", environ("POST", VALIDATE, body=ok, X_API_KEY=read, CONTENT_TYPE="text/plain"), False),
        ("no content type", environ("POST", VALIDATE, body=ok, X_API_KEY=read, CONTENT_TYPE=None), False),
        (
            "form",
            environ(
                "POST",
                VALIDATE,
                body=b"token=x",
                X_API_KEY=read,
                CONTENT_TYPE="application/x-www-form-urlencoded",
            ),
            False,
        ),
        ("no length", environ("POST", VALIDATE, body=ok, X_API_KEY=read, CONTENT_LENGTH=None), False),
        ("Accept html", environ("POST", VALIDATE, body=ok, X_API_KEY=read, ACCEPT="text/html"), False),
        ("Accept xml", environ("POST", VALIDATE, body=ok, X_API_KEY=read, ACCEPT="application/xml"), False),
        ("query string", environ("POST", VALIDATE, body=ok, X_API_KEY=read, query="format=json"), False),
        ("cookie", environ("POST", VALIDATE, body=ok, X_API_KEY=read, COOKIE="csrftoken=bad"), False),
        ("GET", environ("GET", VALIDATE, X_API_KEY=read), False),
        ("HEAD", environ("HEAD", VALIDATE, X_API_KEY=read), False),
        ("OPTIONS", environ("OPTIONS", VALIDATE, X_API_KEY=read), False),
        ("PUT", environ("PUT", VALIDATE, body=ok, X_API_KEY=read), False),
        ("DELETE", environ("DELETE", VALIDATE, X_API_KEY=read), False),
    ]


def test_validate_answers_identically(user_and_token, keys, drf_dispatches, caplog):
    _, token = user_and_token
    for name, env, lean_path in _validate_cases(token, keys):
        try:
            assert_same(env, drf_dispatches, caplog, lean_path=lean_path)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def test_validate_with_touch_answers_identically_but_for_the_slid_times(
    user_and_token, keys, drf_dispatches, caplog
):
    _, token = user_and_token
    body = f'{{"token": "{token}", "touch": true}}'.encode()
    env = environ("POST", VALIDATE, body=body, X_API_KEY=keys["read"], X_REQUEST_ID="t")
    new = assert_same(
        env, drf_dispatches, caplog, lean_path=True, volatile=("session.last_seen_at", "session.expires_at")
    )
    assert new["status"] == "200 OK"


def test_validate_of_a_disabled_user_answers_identically(user_and_token, keys, drf_dispatches, caplog):
    from users.services import user_update

    user_id, token = user_and_token
    with override_settings(READ_CACHE_ENABLED=False):  # inside the test transaction: no commit hook
        user_update(user_id=user_id, changes={"status": "disabled"})
        env = environ("POST", VALIDATE, body=f'{{"token": "{token}"}}'.encode(), X_API_KEY=keys["read"])
        assert assert_same(env, drf_dispatches, caplog, lean_path=True)["status"] == "404 Not Found"


@pytest.mark.parametrize(
    ("rates", "key"),
    [
        ({**RATES_OFF, "client_ip": "0/s"}, "read"),  # over the address's limit
        ({**RATES_OFF, "api_key": "0/s"}, "read"),  # over the key's limit
        ({**RATES_OFF, "auth_failure": "0/s"}, "bad"),  # too many failed authentications
    ],
)
def test_rate_limited_validate_answers_identically(
    user_and_token, keys, drf_dispatches, caplog, settings, rates, key
):
    _, token = user_and_token
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    raw = keys["read"] if key == "read" else keys["read"].split(".")[0] + ".wrong"
    env = environ("POST", VALIDATE, body=f'{{"token": "{token}"}}'.encode(), X_API_KEY=raw)
    new = assert_same(env, drf_dispatches, caplog, lean_path=True)
    assert new["status"] == "429 Too Many Requests" and dict(new["headers"])["Retry-After"] == "1"


def test_validate_with_the_session_redis_down_answers_identically(
    user_and_token, keys, drf_dispatches, caplog, settings
):
    from storage_backends import redis_sessions

    _, token = user_and_token
    settings.USER_SESSIONS_REDIS_URL = "redis://127.0.0.1:1/0"
    redis_sessions._client.cache_clear()
    try:
        env = environ("POST", VALIDATE, body=f'{{"token": "{token}"}}'.encode(), X_API_KEY=keys["read"])
        new = assert_same(env, drf_dispatches, caplog, lean_path=True)
    finally:
        redis_sessions._client.cache_clear()
    assert new["status"] == "503 Service Unavailable" and b"STORAGE_UNAVAILABLE" in new["body"]
    assert any(name == "django.request" for name, *_ in new["logs"])


def test_an_oversized_body_answers_identically(user_and_token, keys, drf_dispatches, caplog, settings):
    settings.REQUEST_MAX_BODY_BYTES = 10
    env = environ("POST", VALIDATE, body=b'{"token": "0123456789"}', X_API_KEY=keys["read"])
    assert assert_same(env, drf_dispatches, caplog, lean_path=None)["status"].startswith("413")


def test_a_host_not_allowed_answers_identically(user_and_token, keys, drf_dispatches, caplog):
    _, token = user_and_token
    env = environ(
        "POST", VALIDATE, body=f'{{"token": "{token}"}}'.encode(), X_API_KEY=keys["read"], HOST="evil.example"
    )
    old = serve(env, lean=False, drf_dispatches=drf_dispatches, caplog=caplog)
    new = serve(env, lean=True, drf_dispatches=drf_dispatches, caplog=caplog)
    assert new["status"] == old["status"] == "400 Bad Request"
    assert new["body"] == old["body"] and dict(new["headers"]).keys() == dict(old["headers"]).keys()
    assert new["metrics"] == old["metrics"] and new["logs"] == old["logs"]
    assert not old["drf"] and not new["drf"]  # refused by the middleware, before any view


def test_keys_off_validate_answers_identically(user_and_token, drf_dispatches, caplog, settings):
    settings.API_AUTH_ENABLED = False
    _, token = user_and_token
    env = environ("POST", VALIDATE, body=f'{{"token": "{token}"}}'.encode())
    assert assert_same(env, drf_dispatches, caplog, lean_path=True)["status"] == "200 OK"


# --- GET /api/v1/users/<user_id> -------------------------------------------------------------------


def _get_cases(user_id: str, keys: dict[str, str]) -> list[tuple[str, dict, bool | None]]:
    read, path = keys["read"], f"/api/v1/users/{user_id}"
    return [
        ("ok", environ("GET", path, X_API_KEY=read, X_REQUEST_ID="r"), True),
        ("ok, Accept json", environ("GET", path, X_API_KEY=read, ACCEPT="application/json"), True),
        ("ok, made-up request id", environ("GET", path, X_API_KEY=read), True),
        ("unknown user", environ("GET", "/api/v1/users/nobody-here", X_API_KEY=read), True),
        ("the reserved id", environ("GET", "/api/v1/users/sessions", X_API_KEY=read), True),
        ("escaped id", environ("GET", "/api/v1/users/a b%", X_API_KEY=read), True),
        ("no key", environ("GET", path), True),
        ("unknown key", environ("GET", path, X_API_KEY="AbCd1234.secret"), True),
        ("write-only key", environ("GET", path, X_API_KEY=keys["write"]), True),
        ("trailing slash", environ("GET", path + "/", X_API_KEY=read), None),
        ("query string", environ("GET", path, X_API_KEY=read, query="x=1"), False),
        ("Accept html", environ("GET", path, X_API_KEY=read, ACCEPT="text/html"), False),
        ("cookie", environ("GET", path, X_API_KEY=read, COOKIE="sessionid="), False),
        ("HEAD", environ("HEAD", path, X_API_KEY=read), False),
        ("OPTIONS", environ("OPTIONS", path, X_API_KEY=read), False),
        ("PATCH", environ("PATCH", path, body=b'{"bad": 1}', X_API_KEY=keys["write"]), False),
        ("PUT", environ("PUT", path, body=b"{}", X_API_KEY=read), False),
        ("POST", environ("POST", path, body=b"{}", X_API_KEY=keys["write"]), False),
    ]


@pytest.mark.parametrize("cache", [True, False], ids=["cache-on", "cache-off"])
def test_get_user_answers_identically(user_and_token, keys, drf_dispatches, caplog, settings, cache):
    settings.READ_CACHE_ENABLED = cache
    user_id, _ = user_and_token
    for name, env, lean_path in _get_cases(user_id, keys):
        try:
            assert_same(env, drf_dispatches, caplog, lean_path=lean_path)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def test_get_user_with_redis_down_answers_identically_from_the_database(
    user_and_token, keys, drf_dispatches, caplog, settings
):
    from storage_backends import read_cache

    user_id, _ = user_and_token
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # the read cache's; the rate limits' cache stays
    read_cache._client.cache_clear()
    try:
        env = environ("GET", f"/api/v1/users/{user_id}", X_API_KEY=keys["read"], X_REQUEST_ID="down")
        new = assert_same(env, drf_dispatches, caplog, lean_path=True)
    finally:
        read_cache._client.cache_clear()
    assert new["status"] == "200 OK" and user_id.encode() in new["body"]


def test_rate_limited_get_user_answers_identically(user_and_token, keys, drf_dispatches, caplog, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**RATES_OFF, "client_ip": "0/s"},
    }
    user_id, _ = user_and_token
    env = environ("GET", f"/api/v1/users/{user_id}", X_API_KEY=keys["read"])
    assert assert_same(env, drf_dispatches, caplog, lean_path=True)["status"] == "429 Too Many Requests"


def test_an_unexpected_error_answers_the_same_500(user_and_token, keys, drf_dispatches, caplog, monkeypatch):
    from users import selectors

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "user_get", broken)
    user_id, _ = user_and_token
    env = environ("GET", f"/api/v1/users/{user_id}", X_API_KEY=keys["read"], X_REQUEST_ID="bug")
    new = assert_same(env, drf_dispatches, caplog, lean_path=True)
    assert new["status"] == "500 Internal Server Error" and b"INTERNAL_ERROR" in new["body"]
    assert any(key[0] == "django_http_exceptions_total_by_type_total" for key in new["metrics"])


# --- the routes themselves -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        VALIDATE,
        "/api/v1/users/u-1",
        "/api/v1/users/sessions",
        "/api/v1/users/a b",
        "/api/v1/users/u-1/",
        "/api/v1/users/u-1/sessions",
        "/api/v1/users/sessions/s-1",
        "/api/v1/users/sessions/s-1/refresh",
        "/api/v1/users",
        "/api/v1/users/sessions/validate/",
        "/api/v1/translation/sessions/s-1",
    ],
)
def test_each_route_matches_exactly_what_the_url_conf_sends_to_its_view(path):
    from django.urls import Resolver404

    try:
        match = resolve(path)
    except Resolver404:
        match = None
    for route in users_lean.routes(prefix="/api/v1/"):
        lean = route.resolve(path)
        sent_here = match is not None and match.view_name == route.view_name
        assert (lean is not None) is sent_here, (path, route.view_name)
        if lean is not None:
            assert (lean.view_name, lean.route, lean.kwargs) == (match.view_name, match.route, match.kwargs)


def test_tracing_on_sends_everything_through_the_full_stack(monkeypatch, keys, user_and_token):
    from core import tracing

    env = environ("GET", f"/api/v1/users/{user_and_token[0]}", X_API_KEY=keys["read"])
    assert application.serves(env)
    monkeypatch.setattr(tracing, "_tracer", object())
    assert not application.serves(env)


def test_the_lean_chain_runs_every_middleware_but_the_no_op_ones(
    settings, keys, user_and_token, drf_dispatches, caplog
):
    from django.core.handlers.wsgi import WSGIHandler

    from core.lean import LeanRoutes

    # given an application built with one more middleware
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.users.test_lean_routes.TagMiddleware"]
    app = LeanRoutes(WSGIHandler(), users_lean.routes(prefix="/api/v1/"))
    env = environ("GET", f"/api/v1/users/{user_and_token[0]}", X_API_KEY=keys["read"])
    # then both paths run it
    new = assert_same(env, drf_dispatches, caplog, lean_path=True, app=app)
    assert dict(new["headers"])["X-Tag"] == "seen"


class TagMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Tag"] = "seen"
        return response


@pytest.mark.parametrize(
    ("proto", "lean_path", "status"),
    [("http", None, "301 Moved Permanently"), ("https", True, "200 OK")],
    ids=["redirected-to-https", "https-with-hsts"],
)
def test_production_https_settings_answer_identically(
    settings, keys, user_and_token, drf_dispatches, caplog, proto, lean_path, status
):
    # given production's HTTPS settings (TLS ends at a proxy that sets X-Forwarded-Proto)
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_REFERRER_POLICY = "same-origin"
    env = environ(
        "GET", f"/api/v1/users/{user_and_token[0]}", X_API_KEY=keys["read"], X_FORWARDED_PROTO=proto
    )
    from django.core.handlers.wsgi import WSGIHandler

    from core.lean import LeanRoutes

    app = LeanRoutes(WSGIHandler(), users_lean.routes(prefix="/api/v1/"))  # middleware read settings once
    new = assert_same(env, drf_dispatches, caplog, lean_path=lean_path, app=app)
    assert new["status"] == status
    if proto == "https":
        assert "Strict-Transport-Security" in dict(new["headers"])
