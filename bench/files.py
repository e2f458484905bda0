"""Files benchmark: upload/download throughput and p95 latency through the service, beside boto3
talking to the same S3 server directly, and a web worker's peak RSS while a 500 MB upload streams.

    scripts/services.sh                    # MariaDB, Redis and moto_server (127.0.0.1:9000)
    .venv/bin/python bench/files.py [--small-runs 20] [--large-runs 3] [--rss-mb 500] [--backends s3,local]

Uses its own database (persistence_bench_files) and Redis db 7; one gunicorn worker per backend,
API keys off. The S3 server is FILES_BENCH_S3_ENDPOINT_URL (default moto_server on
127.0.0.1:FILES_TEST_S3_PORT). Goals (issue 13): uploads through the service >= 0.8x direct,
downloads via redirect ~ direct, peak RSS of the worker < 100 MB above idle during a 500 MB upload.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench_files"
S3_ENDPOINT = os.environ.get(
    "FILES_BENCH_S3_ENDPOINT_URL", f"http://127.0.0.1:{os.environ.get('FILES_TEST_S3_PORT', '9000')}"
)
BUCKET = "persistence-bench-files"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_FILES_REDIS_URL", "redis://127.0.0.1:6379/7"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

import boto3  # noqa: E402
import httpx  # noqa: E402

from bench.seed import reset_database  # noqa: E402
from tests.processes import GunicornServer, service_env  # noqa: E402

MB = 1024 * 1024
FILES = "/api/v1/storage/files"


def s3_client():
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def timed(runs: int, call: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def figure(label: str, size: int, times: list[float]) -> dict:
    rate = size / MB / statistics.mean(times)
    print(f"  {label:<40} {rate:8.1f} MB/s   p95 {p95(times) * 1000:8.1f} ms   (n={len(times)})")
    return {"label": label, "mb_s": rate, "p95": p95(times)}


def service_upload(http: httpx.Client, path: Path) -> str:
    with path.open("rb") as handle:
        response = http.post(
            f"{FILES}/upload", files={"file": (path.name, handle, "application/octet-stream")}
        )
    response.raise_for_status()
    return response.json()["file_id"]


def service_download(http: httpx.Client, file_id: str) -> None:
    """Through the service's answer: the 302 followed to the store (s3), the bytes (local)."""
    with http.stream("GET", f"{FILES}/{file_id}/download", follow_redirects=True) as response:
        response.raise_for_status()
        for _ in response.iter_raw(MB):
            pass


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_rss_during(pid: int, action: Callable[[], None]) -> tuple[int, int]:
    """(idle RSS, peak RSS) of ``pid`` in KiB while ``action`` runs, sampled every 20 ms."""
    idle = rss_kib(pid)
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.02)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        action()
    finally:
        done.set()
        thread.join()
    return idle, peak


def run_backend(backend: str, args: argparse.Namespace, workdir: Path, sources: dict[int, Path]) -> None:
    overrides = {"FILES_BACKEND": backend, "FILES_KEY_PREFIX": "bench/"}
    if backend == "s3":
        overrides |= {
            "FILES_S3_ENDPOINT_URL": S3_ENDPOINT,
            "FILES_S3_BUCKET": BUCKET,
            "FILES_S3_ACCESS_KEY_ID": "testing",
            "FILES_S3_SECRET_ACCESS_KEY": "testing",
            "FILES_S3_ADDRESSING_STYLE": "path",
        }
    else:
        overrides["FILES_ROOT"] = str(workdir / "store")
    print(f"\n== backend {backend} (one gunicorn worker)")
    with GunicornServer(env=service_env(**overrides), workers=1) as server:
        http = httpx.Client(base_url=server.url, timeout=600)
        s3 = s3_client() if backend == "s3" else None
        for size, runs in ((1 * MB, args.small_runs), (50 * MB, args.large_runs)):
            path = sources[size]
            ids: list[str] = []
            up = timed(runs, lambda: ids.append(service_upload(http, path)))  # noqa: B023
            figure(f"upload {size // MB} MB through the service", size, up)
            down = timed(runs, lambda: service_download(http, ids[0]))  # noqa: B023
            figure(f"download {size // MB} MB via the service", size, down)
            if s3 is not None:
                data = path.read_bytes()
                direct_up = timed(runs, lambda: s3.put_object(Bucket=BUCKET, Key="direct/x", Body=data))  # noqa: B023
                figure(f"upload {size // MB} MB boto3 direct", size, direct_up)
                direct_down = timed(runs, lambda: s3.get_object(Bucket=BUCKET, Key="direct/x")["Body"].read())
                figure(f"download {size // MB} MB boto3 direct", size, direct_down)
                print(
                    f"  ratio service/direct: upload {statistics.mean(direct_up) / statistics.mean(up):.2f}x, "
                    f"download {statistics.mean(direct_down) / statistics.mean(down):.2f}x"
                )
    if args.rss_mb:
        measure_rss(overrides, args.rss_mb, workdir, sources[1 * MB])


def measure_rss(overrides: dict[str, str], size_mb: int, workdir: Path, warm_up: Path) -> None:
    """In a fresh worker (RSS is a high-water mark): one small upload to warm up, then the big one."""
    big = workdir / "big.bin"
    with big.open("wb") as handle:  # sparse: no disk written, read back as zeros
        handle.truncate(size_mb * MB)
    with GunicornServer(env=service_env(**overrides), workers=1) as server:
        http = httpx.Client(base_url=server.url, timeout=600)
        pid = worker_pid(server.proc.pid)  # type: ignore[union-attr]
        service_upload(http, warm_up)
        idle, peak = peak_rss_during(pid, lambda: service_upload(http, big))
    print(
        f"  worker RSS during a {size_mb} MB upload (fresh worker): idle {idle / 1024:.0f} MB, "
        f"peak {peak / 1024:.0f} MB, growth {(peak - idle) / 1024:.1f} MB"
    )
    big.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small-runs", type=int, default=20)
    parser.add_argument("--large-runs", type=int, default=3)
    parser.add_argument("--rss-mb", type=int, default=500, help="0 skips the memory measurement")
    parser.add_argument("--backends", default="s3,local")
    args = parser.parse_args()
    reset_database(DB_NAME)
    s3 = s3_client()
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sources = {}
        for size in (1 * MB, 50 * MB):
            sources[size] = workdir / f"{size // MB}mb.bin"
            sources[size].write_bytes(os.urandom(size))
        for backend in args.backends.split(","):
            run_backend(backend, args, workdir, sources)


if __name__ == "__main__":
    main()
