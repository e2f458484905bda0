"""Server CPU per request of the users hot routes, in process, through the whole WSGI application.

    DATABASE_URL=mysql://root@127.0.0.1:3306/<db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
    USER_SESSIONS_REDIS_URL=redis://127.0.0.1:6379/<n+1> \\
        .venv/bin/python bench/users_wsgi.py [--requests 5000] [--repeat 3] [--profile validate]

Calls Django's WSGI application (what gunicorn calls) with a prepared environ, the way
bench/users.py's server runs (test settings with API keys on, the verified-key cache at its
production 5 s, rate limits counted in Redis on every request, metrics in multiprocess mode,
LOG_LEVEL WARNING), and prints ``time.process_time`` per request for: POST
/users/sessions/validate, GET /users/{id} with the read cache on (a level-1 hit) and off. CPU
time, not wall clock: on a shared machine it still compares variants. Without HTTP parsing and
sockets (gunicorn's share), so it is the part of the server's CPU this code decides.

The database named by DATABASE_URL must be migrated; the script adds an API key, a user and a
session to it (and leaves them). ``--profile ROUTE`` prints cProfile's top functions of one route.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "API_AUTH_ENABLED": "true",
        "API_KEY_CACHE_SECONDS": "5",
        "THROTTLE_RATE_KEY": "100000000/min",
        "THROTTLE_RATE_IP": "100000000/min",
        "LOG_LEVEL": "WARNING",
    }
)
# As under gunicorn (persistence_site/gunicorn_conf.py): metric values in memory-mapped files.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="users-wsgi-metrics-"))

import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402

from api_keys.services import api_key_create  # noqa: E402
from persistence_site.wsgi import application  # noqa: E402
from users.services import user_create, user_session_create  # noqa: E402

USER_ID = "wsgi-bench-1"


def environ(method: str, path: str, key: str, body: bytes = b"") -> Callable[[], dict[str, object]]:
    """A fresh environ per call (Django reads wsgi.input), like gunicorn builds one per request."""
    base = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "ApacheBench/2.3",
        "HTTP_ACCEPT": "*/*",
        "HTTP_X_API_KEY": key,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.errors": sys.stderr,
    }
    if body:
        base["CONTENT_TYPE"] = "application/json"
        base["CONTENT_LENGTH"] = str(len(body))

    def make() -> dict[str, object]:
        return {**base, "wsgi.input": io.BytesIO(body)}

    return make


def call(app: Callable[..., Any], make: Callable[[], dict[str, object]]) -> tuple[str, bytes]:
    answer: list[str] = []
    result = app(make(), lambda status, headers, exc_info=None: answer.append(status))
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer[0], body


def per_request(app: Callable[..., Any], make: Callable[[], dict[str, object]], requests: int) -> float:
    """CPU milliseconds per request (process_time) over ``requests`` calls after a warm-up."""
    for _ in range(200):
        call(app, make)
    started = time.process_time()
    for _ in range(requests):
        call(app, make)
    return (time.process_time() - started) / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", choices=["validate", "get_cached", "get_uncached"])
    parser.add_argument("--path", choices=["lean", "drf"], default="lean", help="the path --profile runs")
    args = parser.parse_args()

    _, key = api_key_create(name="users-wsgi-bench", scopes="read,write")
    if not _exists(USER_ID):
        user_create(user_id=USER_ID, username=USER_ID)
    token = user_session_create(user_id=USER_ID, ttl_seconds=86_400)["token"]
    routes = {
        "validate": environ(
            "POST", "/api/v1/users/sessions/validate", key, f'{{"token": "{token}"}}'.encode()
        ),
        "get_cached": environ("GET", f"/api/v1/users/{USER_ID}", key),
        "get_uncached": environ("GET", f"/api/v1/users/{USER_ID}", key),
    }
    for name, make in routes.items():
        answers = {path: _run(name, path, lambda make=make: call(application, make)) for path in PATHS}
        assert answers["lean"][0].startswith("200"), (name, answers)
        assert answers["lean"][1] == answers["drf"][1] or name == "validate", (name, answers)

    if args.profile:
        profile = cProfile.Profile(time.process_time)  # CPU, not wall clock
        work = lambda: per_request(application, routes[args.profile], args.requests)  # noqa: E731
        _run(args.profile, args.path, lambda: (profile.enable(), work(), profile.disable()))
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        return

    print(
        f"CPU ms per request (process_time), {args.requests:,} requests per figure, {args.repeat} rounds "
        "(min, then each round); drf: LEAN_ROUTES_ENABLED=false"
    )
    figures: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):  # interleaved, so a busy spell of the machine hits every variant
        for name, make in routes.items():
            for path in PATHS:
                figure = _run(name, path, lambda make=make: per_request(application, make, args.requests))
                figures.setdefault((name, path), []).append(figure)  # type: ignore[arg-type]
    for (name, path), values in figures.items():
        print(f"  {name:13} {path:5} min {min(values):.3f}  " + " ".join(f"{v:.3f}" for v in values))


PATHS = ("drf", "lean")


def _run(name: str, path: str, work: Callable[[], Any]) -> Any:
    with override_settings(LEAN_ROUTES_ENABLED=path == "lean", READ_CACHE_ENABLED=name != "get_uncached"):
        return work()


def _exists(user_id: str) -> bool:
    from users.models import User

    return User.objects.filter(user_id=user_id).exists()


if __name__ == "__main__":
    main()
