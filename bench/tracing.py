"""What tracing costs a request: a 100-task batch POST through Django's whole stack, in process.

    .venv/bin/python bench/tracing.py [--requests 3000] [--mode off|on|both]

``off``: no OTEL_EXPORTER_OTLP_ENDPOINT (the default configuration). ``on``: tracing set up as in a
gunicorn worker, exporting over OTLP http/protobuf (batched, off the request path) to a collector on
loopback in this process. Each request validates 100 tasks and buffers them in Redis with one
script (the same ids every time, so the buffer stays small and no flush is triggered). Prints the
CPU time of this process per request, and the mean, p50 and p95 wall time per request. Uses Redis db 9 (``BENCH_REDIS_URL``) and no database rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/persistence_bench"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "THROTTLE_RATE_KEY": "off",
        "THROTTLE_RATE_IP": "off",
    }
)
os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
os.environ.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.test import Client  # noqa: E402

from storage_backends.buffer import get_write_buffer  # noqa: E402
from tests.factories import session_record, task_record  # noqa: E402

API = "/api/v1/translation"


def measure(requests: int, warmup: int) -> tuple[list[float], float]:
    """Wall time of each request, and CPU time of this process per request (what tracing adds is
    CPU work; on a busy machine the CPU time is the steadier figure)."""
    client = Client()  # builds its middleware chain now: after tracing was (or was not) set up
    body = orjson.dumps({"tasks": [task_record("bench-s", f"bench-t-{i}") for i in range(100)]})
    times = []
    cpu_started = 0.0
    for i in range(warmup + requests):
        if i == warmup:
            cpu_started = time.process_time()
        started = time.perf_counter()
        response = client.post(f"{API}/tasks/batch", body, content_type="application/json")
        elapsed = time.perf_counter() - started
        if response.status_code != 202:
            raise SystemExit(f"POST answered {response.status_code}: {response.content[:300]!r}")
        if i >= warmup:
            times.append(elapsed)
    return times, (time.process_time() - cpu_started) / requests


def report(mode: str, measured: tuple[list[float], float]) -> float:
    times, cpu = measured
    ordered = sorted(times)
    mean = statistics.fmean(times) * 1000
    p50 = ordered[len(ordered) // 2] * 1000
    p95 = ordered[int(0.95 * len(ordered))] * 1000
    print(
        f"tracing {mode:<3}  {len(times)} requests  CPU {cpu * 1000:.3f} ms/request  "
        f"wall mean {mean:.3f} ms  p50 {p50:.3f} ms  p95 {p95:.3f} ms"
    )
    return cpu * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--mode", choices=["off", "on", "both"], default="both")
    args = parser.parse_args()

    buffer = get_write_buffer()
    buffer.clear()
    buffer.add("translation_sessions", [session_record("bench-s")])
    means = {}
    try:
        if args.mode in ("off", "both"):
            means["off"] = report("off", measure(args.requests, args.warmup))
        if args.mode in ("on", "both"):
            from core import tracing
            from tests.tracing.collector import OTLPCollector

            with OTLPCollector() as collector:
                os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.url
                assert tracing.setup(service_name="persistence-bench")
                means["on"] = report("on", measure(args.requests, args.warmup))
                tracing.shutdown()
                print(f"           {len(collector.spans)} spans received by the collector")
    finally:
        buffer.clear()
    if len(means) == 2:
        print(f"tracing on costs {(means['on'] - means['off']) * 1000:.0f} us of CPU per request")


if __name__ == "__main__":
    main()
