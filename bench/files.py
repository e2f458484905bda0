"""Files benchmark: upload/download throughput and p95 latency through the service, beside boto3
talking to the same S3 server directly, and a web worker's peak RSS while a 500 MB upload streams.

    scripts/services.sh                    # MariaDB, Redis and moto_server (127.0.0.1:9000)
    .venv/bin/python bench/files.py [--small-runs 20] [--large-runs 3] [--rss-mb 500] [--backends s3,local]

Uses its own database (persistence_bench_files) and Redis db 7; one gunicorn worker per backend,
API keys off. The S3 server is FILES_BENCH_S3_ENDPOINT_URL (default moto_server on
127.0.0.1:FILES_TEST_S3_PORT). Goals (issue 13): uploads through the service >= 0.8x direct,
downloads via redirect ~ direct, peak RSS of the worker < 100 MB above idle during a 500 MB upload.

What is compared (same S3 server, same file, same run; the cases alternate run by run so a change
of load hits all of them, and figures are medians):
- upload: the service's streaming upload against boto3's own way of uploading a file,
  ``upload_fileobj`` with its default TransferConfig. Both make the same S3 requests: one
  PutObject up to 8 MiB, above it a multipart upload of 8 MiB parts (a stream of unknown length
  cannot be sent as one PutObject). One ``put_object`` of the whole body held in memory is printed
  as a reference: on moto_server a multipart upload costs the server about twice the CPU of one
  PutObject (it copies every part again on complete), whoever sends it.
- download: the service's 302, then a GET of its presigned URL with urllib3 (the HTTP library boto3
  uses), against boto3's ``get_object`` of the same object; both stream the body in 1 MiB pieces
  and drop it. The 302 alone is printed too, and httpx following the 302 (httpx reads a large
  body more slowly than urllib3: that is the client's cost, not the service's).
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
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "mysql://root@127.0.0.1:3306/persistence_bench_files")
DB_NAME = urlsplit(DATABASE_URL).path.lstrip("/")  # dropped and re-created by each run
S3_ENDPOINT = os.environ.get(
    "FILES_BENCH_S3_ENDPOINT_URL", f"http://127.0.0.1:{os.environ.get('FILES_TEST_S3_PORT', '9000')}"
)
BUCKET = os.environ.get("FILES_BENCH_S3_BUCKET", "persistence-bench-files")
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": os.environ.get("BENCH_FILES_REDIS_URL", "redis://127.0.0.1:6379/7"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
)

import django  # noqa: E402

django.setup()

import boto3  # noqa: E402
import httpx  # noqa: E402
import urllib3  # noqa: E402

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


def alternating(runs: int, cases: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Seconds of each call of each case; the cases take turns, run after run."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, call in cases.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return times


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def figure(label: str, size: int, times: list[float]) -> None:
    median = statistics.median(times)
    print(
        f"  {label:<52} {size / MB / median:8.1f} MB/s   median {median * 1000:8.1f} ms   "
        f"p95 {p95(times) * 1000:8.1f} ms   (n={len(times)})"
    )


def ratio(direct: list[float], service: list[float]) -> float:
    """How fast the service is against direct, from the medians (1.0: as fast)."""
    return statistics.median(direct) / statistics.median(service)


def service_upload(http: httpx.Client, path: Path) -> str:
    with path.open("rb") as handle:
        response = http.post(
            f"{FILES}/upload", files={"file": (path.name, handle, "application/octet-stream")}
        )
    response.raise_for_status()
    return response.json()["file_id"]


def service_download(http: httpx.Client, file_id: str, pool: urllib3.PoolManager | None = None) -> None:
    """Through the service's answer: on s3 the 302, whose URL is fetched with ``pool`` (urllib3,
    the HTTP library boto3 uses, so the bytes travel as in the direct case) or, without a pool,
    followed by httpx; on local the bytes from the service."""
    with http.stream("GET", f"{FILES}/{file_id}/download", follow_redirects=pool is None) as response:
        if response.status_code != 302:
            response.raise_for_status()
            for _ in response.iter_raw(MB):
                pass
            return
        location = response.headers["location"]
    answer = pool.request("GET", location, preload_content=False)  # type: ignore[union-attr]
    if answer.status != 200:
        raise RuntimeError(f"presigned GET answered {answer.status}")
    for _ in answer.stream(MB):
        pass
    answer.release_conn()


def redirect_only(http: httpx.Client, file_id: str) -> None:
    """The service's part of a download on s3: the 302 to the presigned URL, not followed."""
    response = http.get(f"{FILES}/{file_id}/download")
    if response.status_code != 302:
        raise RuntimeError(f"expected a redirect, got {response.status_code}")


def direct_upload(s3, path: Path) -> None:
    """boto3's own way of uploading a file: the managed transfer with its default TransferConfig."""
    with path.open("rb") as handle:
        s3.upload_fileobj(handle, BUCKET, "direct/managed")


def direct_download(s3, key: str) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    for _ in body.iter_chunks(MB):
        pass


def remove_prefix(s3, prefix: str) -> None:
    """Leave nothing behind on a shared S3 server."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


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
    s3 = s3_client() if backend == "s3" else None
    try:
        with GunicornServer(env=service_env(**overrides), workers=1) as server:
            http = httpx.Client(base_url=server.url, timeout=600)
            for size, runs in ((1 * MB, args.small_runs), (50 * MB, args.large_runs)):
                run_size(http, s3, sources[size], size, runs)
        if args.rss_mb:
            measure_rss(overrides, args.rss_mb, workdir, sources[1 * MB])
    finally:
        if s3 is not None:
            remove_prefix(s3, "bench/")
            remove_prefix(s3, "direct/")


def run_size(http: httpx.Client, s3, path: Path, size: int, runs: int) -> None:
    label = f"{size // MB} MB"
    ids: list[str] = []
    upload = {f"upload {label} through the service": lambda: ids.append(service_upload(http, path))}
    if s3 is not None:
        data = path.read_bytes()
        upload[f"upload {label} boto3 direct (upload_fileobj)"] = lambda: direct_upload(s3, path)
        upload[f"upload {label} boto3 put_object from memory (reference)"] = lambda: s3.put_object(
            Bucket=BUCKET, Key="direct/put", Body=data
        )
    up = alternating(runs, upload)
    for name, times in up.items():
        figure(name, size, times)
    if s3 is None:
        download = {f"download {label} via the service": lambda: service_download(http, ids[0])}
    else:
        pool = urllib3.PoolManager()
        key = f"bench/{ids[0]}"  # the very object the service stored
        download = {
            f"download {label} via the service (302, urllib3 GET)": lambda: service_download(
                http, ids[0], pool
            ),
            f"download {label} boto3 direct (get_object)": lambda: direct_download(s3, key),
            f"download {label}: the 302 alone": lambda: redirect_only(http, ids[0]),
            f"download {label} via the service (httpx follows)": lambda: service_download(http, ids[0]),
        }
    down = alternating(runs, download)
    for name, times in down.items():
        figure(name, size, times)
    if s3 is None:
        return
    service_up, direct_up, put_up = up.values()
    service_down, direct_down, *_ = down.values()
    print(
        f"  ratio service/direct {label}: upload {ratio(direct_up, service_up):.2f}x (goal >= 0.8), "
        f"download {ratio(direct_down, service_down):.2f}x (goal ~ 1); "
        f"upload against one put_object from memory {ratio(put_up, service_up):.2f}x"
    )


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
    parser.add_argument("--large-runs", type=int, default=5)
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
