"""Audit search benchmark on the OpenSearch plugin: ingest end to end (HTTP batch POSTs -> Redis
buffer -> Celery flush -> bulk index) against the bulk API of the same server used directly, then
full-text query latency over the indexed events, and export throughput and peak RSS.

    .venv/bin/python bench/audit.py [--events 1000000] [--clients 8] [--web-workers 2] [--url URL]

Without ``--url`` it starts a private osmem-server (the in-memory OpenSearch-API emulator) on a
free port and stops it at the end, so a million events never load the shared one. Uses its own
database (persistence_bench_audit; BENCH_DATABASE_URL), Redis db 9 (BENCH_REDIS_URL) and index
prefixes (``--prefix``, default audit-bench: ``-raw`` for the direct bulk run); starts gunicorn
and one Celery worker. Prints:

- direct bulk: events/s of ``_bulk`` requests of 5,000 pre-serialized events, one stream (what one
  flusher sends), into an index made from the same template;
- end to end: accepted events/s (202s) and events/s until every event is searchable, and the
  ratio to direct bulk (goal >= 0.6);
- full-text query p50/p95/p99 of ``OpenSearchAuditSearch.search`` (page of 20, exact total) over
  the indexed events, English words, word pairs and Chinese bigrams (goal p95 < 100 ms), and of
  ``GET /api/v1/audit/logs?q=`` for comparison;
- export: events/s of ``GET /api/v1/audit/logs/export`` (NDJSON, point-in-time + search_after) of
  every event, and the peak RSS of the gunicorn worker serving it (sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "persistence_bench_audit"
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "persistence_site.settings.test",
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{DB_NAME}"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
        "API_AUTH_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "STORAGE_BACKEND_AUDIT_LOGS": "storage_backends.search_opensearch.OpenSearchAuditSearch",
    }
)

import django  # noqa: E402

BATCH = 1000  # events per POST (the contract's maximum)
BULK_EVENTS = 5000  # events per direct _bulk request (the flusher's largest chunk)

WORDS = [
    "session",
    "delete",
    "download",
    "upload",
    "report",
    "export",
    "import",
    "user",
    "create",
    "update",
    "revoke",
    "key",
    "file",
    "sheet",
    "translation",
    "task",
    "status",
    "change",
    "cleanup",
    "admin",
    "login",
    "logout",
    "quota",
    "backup",
    "restore",
    "invoice",
    "review",
    "approve",
    "reject",
    "merge",
    "publish",
    "archive",
    "schedule",
    "retry",
    "timeout",
    "failure",
    "success",
    "payment",
    "refund",
    "glossary",
    "term",
    "memory",
    "vendor",
    "project",
    "deadline",
    "batch",
    "column",
    "row",
    "cell",
    "comment",
    "version",
    "draft",
]
CHINESE = (
    "删除翻译会话",
    "上传文件",
    "下载报告",
    "更新用户",
    "撤销密钥",
    "清理过期任务",
    "导出审计日志",
    "创建项目",
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def events(count: int, *, seed: int, prefix: str) -> Iterator[dict]:
    """``count`` API-shaped events over ~60 days, messages from a 60-word vocabulary and 8 Chinese phrases."""
    rnd = random.Random(seed)
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    for i in range(count):
        when = start + dt.timedelta(seconds=rnd.randrange(60 * 86_400), microseconds=rnd.randrange(1_000_000))
        words = " ".join(rnd.choice(WORDS) for _ in range(6))
        yield {
            "event_id": f"{prefix}-{i:08d}",
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor_id": f"actor-{rnd.randrange(500)}",
            "actor_type": rnd.choice(("user", "api_key", "service", "system")),
            "action": rnd.choice(
                ("session.delete", "session.status_change", "file.upload", "file.download", "user.update")
            ),
            "resource_type": "translation_session",
            "resource_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
            "outcome": "success" if rnd.random() < 0.95 else "failure",
            "message": f"{words} {rnd.choice(CHINESE)} #{i}",
            "ip": f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(256)}",
            "user_agent": "persistence-client/1.0",
            "request_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
            "details": {"rows": rnd.randrange(1000), "sheet": "Sheet1"},
        }


def start_osmem() -> tuple[subprocess.Popen, str]:
    from osmem_server import resolve_binary

    from tests.processes import free_port

    port = free_port()
    log = open(ROOT / "data" / "osmem_bench.log", "wb")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        [resolve_binary(), "-addr", f"127.0.0.1:{port}", "-no-stdin-watch"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    import httpx

    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc, f"http://127.0.0.1:{port}"
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("osmem-server did not start")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def direct_bulk(url: str, prefix: str, count: int) -> float:
    """events/s of _bulk requests sent straight to the server (same template, one stream)."""
    import orjson

    from storage_backends.search_opensearch import OpenSearchAuditSearch, _document

    raw = OpenSearchAuditSearch(url=url, index_prefix=prefix)
    raw.ensure_template()
    client = raw.client
    started = time.perf_counter()
    parts: list[bytes] = []

    def send() -> None:
        answer = client.bulk(body=b"".join(parts), request_timeout=120)
        assert not answer["errors"], str(answer["items"][:2])[:500]

    for event in events(count, seed=2, prefix="raw"):
        record = {**event, "timestamp": dt.datetime.fromisoformat(event["timestamp"])}
        index = raw.index_for(record["timestamp"])
        parts.append(orjson.dumps({"create": {"_index": index, "_id": record["event_id"]}}) + b"\n")
        parts.append(orjson.dumps(_document(record)) + b"\n")
        if len(parts) >= 2 * BULK_EVENTS:
            send()
            parts = []
    if parts:
        send()
    elapsed = time.perf_counter() - started
    return count / elapsed


def post_all(url: str, count: int, clients: int) -> None:
    import httpx
    import orjson

    source = events(count, seed=1, prefix="e2e")
    lock = threading.Lock()

    def next_body() -> bytes | None:
        with lock:
            batch = [e for _, e in zip(range(BATCH), source, strict=False)]
        return orjson.dumps({"logs": batch}) if batch else None

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60, headers={"Content-Type": "application/json"}) as http:
            while (body := next_body()) is not None:
                while True:
                    response = http.post("/api/v1/audit/logs/batch", content=body)
                    if response.status_code == 503:  # back-pressure: retry, as a client would
                        time.sleep(0.1)
                        continue
                    assert response.status_code == 202, response.text[:500]
                    break

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--url", default=None, help="an OpenSearch/Elasticsearch to use instead of a private osmem"
    )
    parser.add_argument("--prefix", default="audit-bench")
    args = parser.parse_args()
    (ROOT / "data").mkdir(exist_ok=True)

    osmem = None
    url = args.url
    if url is None:
        osmem, url = start_osmem()
    os.environ["AUDIT_SEARCH_URL"] = url
    os.environ["AUDIT_SEARCH_INDEX_PREFIX"] = args.prefix
    django.setup()

    import httpx

    from bench.seed import reset_database
    from storage_backends.buffer import get_write_buffer
    from storage_backends.search import AuditQuery
    from storage_backends.search_opensearch import OpenSearchAuditSearch
    from tests.processes import CeleryWorker, GunicornServer, child_pids

    try:
        reset_database(os.environ["DATABASE_URL"].rsplit("/", 1)[1])
        get_write_buffer().clear()
        plugin = OpenSearchAuditSearch(url=url, index_prefix=args.prefix)
        for backend in (plugin, OpenSearchAuditSearch(url=url, index_prefix=f"{args.prefix}-raw")):
            indices = backend.monthly_indices()
            if indices:
                backend.client.indices.delete(index=",".join(indices))
        n = args.events
        print(f"audit bench: {n:,} events, server {url} ({'private osmem-server' if osmem else 'given'})")

        raw_rate = direct_bulk(url, f"{args.prefix}-raw", n)
        print(f"direct _bulk ({BULK_EVENTS:,}/request, one stream): {raw_rate:,.0f} events/s")

        # gunicorn's sync workers are killed after `timeout` (60 s in gunicorn_conf.py) even while
        # streaming: an export of every event may take longer, so the bench allows 15 minutes.
        env = {
            **os.environ,
            "BUFFER_FLUSH_SIZE": "5000",
            "BUFFER_CAPACITY": "500000",
            "GUNICORN_CMD_ARGS": "--timeout 900",
        }
        with (
            GunicornServer(env=env, workers=args.web_workers) as server,
            CeleryWorker(env=env, concurrency=1),
        ):
            started = time.perf_counter()
            post_all(server.url, n, args.clients)
            accepted = time.perf_counter() - started
            while True:
                httpx.post(server.url + "/api/v1/translation/flush", timeout=120)
                plugin.refresh_indices()
                stored = plugin.client.count(index=plugin.alias)["count"]
                if stored >= n:
                    break
                time.sleep(0.2)
            done = time.perf_counter() - started
            e2e = n / done
            print(
                f"end to end (HTTP -> buffer -> flush -> index), {args.clients} clients x {BATCH} events/POST: "
                f"accepted {n / accepted:,.0f} events/s, searchable {e2e:,.0f} events/s "
                f"= {e2e / raw_rate:.2f}x direct bulk"
            )

            rnd = random.Random(7)
            kinds = {
                "one word (~10% match)": lambda: rnd.choice(WORDS),
                "two words (~1%)": lambda: f"{rnd.choice(WORDS)} {rnd.choice(WORDS)}",
                "Chinese bigram (~12%)": lambda: (lambda p, i: p[i : i + 2])(
                    phrase := rnd.choice(CHINESE), rnd.randrange(len(phrase) - 1)
                ),
                "event number (1 match)": lambda: f"{rnd.randrange(n)}",
            }
            queries = [
                (kind, make()) for _ in range(args.queries // len(kinds)) for kind, make in kinds.items()
            ]
            plugin.search(AuditQuery(q="session"), page_size=20)  # warm-up
            latencies, by_kind = [], {kind: ([], []) for kind in kinds}
            for kind, q in queries:
                t = time.perf_counter()
                page = plugin.search(AuditQuery(q=q), order="desc", page_size=20)
                elapsed = (time.perf_counter() - t) * 1000
                latencies.append(elapsed)
                by_kind[kind][0].append(elapsed)
                by_kind[kind][1].append(page.total)
            print(
                f"full-text query on the plugin (page of 20 newest, exact total), {len(queries)} queries: "
                f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
                f"p99 {percentile(latencies, 99):.1f} ms"
            )
            for kind, (values, totals) in by_kind.items():
                print(
                    f"  {kind}: median {statistics.median(totals):,.0f} matches, "
                    f"p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} ms"
                )
            queries = [q for _, q in queries]
            http_latencies = []
            with httpx.Client(base_url=server.url, timeout=60) as http:
                for q in queries[:100]:
                    t = time.perf_counter()
                    response = http.get("/api/v1/audit/logs", params={"q": q})
                    http_latencies.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200, response.text[:300]
            print(
                f"GET /api/v1/audit/logs?q= ({len(http_latencies)} requests): p50 {percentile(http_latencies, 50):.1f} ms, "
                f"p95 {percentile(http_latencies, 95):.1f} ms"
            )

            workers = child_pids(server.proc.pid)
            baseline = {pid: rss_kb(pid) for pid in workers}
            peak = dict(baseline)
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    for pid in workers:
                        peak[pid] = max(peak[pid], rss_kb(pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            exported = 0
            t = time.perf_counter()
            try:
                with httpx.stream("GET", server.url + "/api/v1/audit/logs/export", timeout=900) as response:
                    assert response.status_code == 200
                    for line in response.iter_lines():
                        if line:
                            exported += 1
            finally:
                elapsed = time.perf_counter() - t
                stop.set()
                sampler.join()
            busiest = max(workers, key=lambda pid: peak[pid] - baseline[pid])
            print(
                f"export (NDJSON over HTTP, point-in-time + search_after): {exported:,} events in {elapsed:.1f} s "
                f"= {exported / elapsed:,.0f} events/s; exporting worker RSS {baseline[busiest] / 1024:.0f} MiB "
                f"before, peak {peak[busiest] / 1024:.0f} MiB"
            )
            assert exported == n, f"exported {exported} of {n}"

            t = time.perf_counter()
            direct = sum(1 for _ in plugin.export(AuditQuery(), order="asc"))
            elapsed = time.perf_counter() - t
            print(
                f"export in process (plugin.export, no HTTP): {direct:,} events = {direct / elapsed:,.0f} events/s"
            )
    finally:
        if osmem is not None:
            osmem.terminate()
            osmem.wait(timeout=30)


if __name__ == "__main__":
    main()
