"""User-read and token-validation benchmark, read cache on and off side by side (issue 14).

    .venv/bin/python bench/users.py [--workers 4] [--requests 4000] [--concurrency 16] [--users 1000]

Uses its own database (persistence_bench_users) and Redis dbs 6 (cache, buffer) and 5 (user
sessions); creates users and one session each, starts gunicorn with API keys on, once with the read
cache on and once off, and drives GET /users/{id} (the same few users, as a login-heavy client does)
and POST /users/sessions/validate with ApacheBench. Prints requests/s, p50/p95/p99 and the cache
hit ratio per level (from /api/v1/system/metrics).
Goals: validate >= 2,000 requests/s with p95 < 10 ms; the cache at least doubles user reads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench_users"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_USERS_REDIS_URL", "redis://127.0.0.1:6379/6"),
        "USER_SESSIONS_REDIS_URL": os.environ.get(
            "BENCH_USER_SESSIONS_REDIS_URL", "redis://127.0.0.1:6379/5"
        ),
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402

from api_keys.services import api_key_create  # noqa: E402
from bench.seed import reset_database  # noqa: E402
from tests.processes import GunicornServer, service_env  # noqa: E402

API = "/api/v1/users"


def ab(url: str, key: str, requests: int, concurrency: int, body: Path | None = None) -> dict[str, float]:
    command = ["ab", "-q", "-n", str(requests), "-c", str(concurrency), "-H", f"X-API-Key: {key}"]
    if body is not None:
        command += ["-p", str(body), "-T", "application/json"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    figures = {
        "rps": float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1)),
        "failed": int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        + (int(non_2xx.group(1)) if non_2xx else 0),
    }
    for q in (50, 95, 99):
        figures[f"p{q}"] = float(re.search(rf"^\s+{q}%\s+(\d+)", out, re.M).group(1))
    return figures


def hit_ratios(url: str, key: str) -> str:
    text = httpx.get(url + "/api/v1/system/metrics", headers={"X-API-Key": key}).text
    counts: dict[tuple[str, str], float] = {}
    for level, result, value in re.findall(
        r'persistence_read_cache_requests_total\{cache="user",level="(l\d)",result="(\w+)"\} ([\d.e+]+)', text
    ):
        counts[(level, result)] = counts.get((level, result), 0) + float(value)
    parts = []
    for level in ("l1", "l2"):
        hits, misses = counts.get((level, "hit"), 0), counts.get((level, "miss"), 0)
        if hits + misses:
            parts.append(f"{level} {100 * hits / (hits + misses):.1f}% of {hits + misses:,.0f}")
    return ", ".join(parts) or "no lookups"


def in_process(token: str, rounds: int = 2000) -> None:
    """The service calls without the HTTP stack: what the cache itself saves."""
    from django.test import override_settings

    from users.selectors import user_get
    from users.services import user_session_validate

    def per_call(call: object) -> float:
        call()  # type: ignore[operator]
        started = time.perf_counter()
        for _ in range(rounds):
            call()  # type: ignore[operator]
        return (time.perf_counter() - started) / rounds * 1000

    cached = per_call(lambda: user_get(user_id="bench-1"))
    with override_settings(READ_CACHE_ENABLED=False):
        uncached = per_call(lambda: user_get(user_id="bench-1"))
    validate = per_call(lambda: user_session_validate(token=token))
    print(
        f"in process (no HTTP): user_get {cached:.3f} ms cached vs {uncached:.3f} ms uncached; "
        f"validate {validate:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("ab") is None:
        sys.exit(
            "bench/users.py needs ApacheBench: apt-get install apache2-utils (scripts/bootstrap.sh dev does)"
        )
    reset_database(DB_NAME)
    _, key = api_key_create(name="bench-users", scopes="read,write")
    base = {"API_AUTH_ENABLED": "true", "THROTTLE_RATE_KEY": "off", "THROTTLE_RATE_IP": "off"}
    print(f"gunicorn {args.workers} sync workers, API keys on; {args.concurrency} concurrent clients (ab)")
    print(f"{'':42} {'req/s':>8} {'p50':>5} {'p95':>5} {'p99':>5}  (ms)")
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "validate.json"
        for label, enabled in (("cache on", "true"), ("cache off", "false")):
            env = service_env(**base, READ_CACHE_ENABLED=enabled)
            with (
                GunicornServer(env=env, workers=args.workers) as server,
                httpx.Client(base_url=server.url) as c,
            ):
                c.headers["X-API-Key"] = key
                if enabled == "true":
                    for n in range(args.users):
                        c.post(API, json={"user_id": f"bench-{n}", "username": f"bench-{n}"})
                token = c.post(f"{API}/bench-1/sessions", json={}).json()["token"]
                body.write_text(f'{{"token": "{token}"}}')
                for name, path, payload in (
                    ("GET /users/{id}", f"{API}/bench-1", None),
                    ("POST /users/sessions/validate", f"{API}/sessions/validate", body),
                ):
                    ab(server.url + path, key, 200, args.concurrency, payload)  # warm-up
                    f = ab(server.url + path, key, args.requests, args.concurrency, payload)
                    print(
                        f"{name + ' (' + label + ')':42} {f['rps']:8,.0f} {f['p50']:5.0f} {f['p95']:5.0f} {f['p99']:5.0f}"
                        + (f"  failed={f['failed']:.0f}" if f["failed"] else "")
                    )
                print(f"  user cache hit ratio ({label}): {hit_ratios(server.url, key)}")
        in_process(token)


if __name__ == "__main__":
    main()
