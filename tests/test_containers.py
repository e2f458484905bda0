"""The Dockerfile and docker-compose.yml: static checks, and the container rehearsal.

The rehearsal (marker ``container``, part of ``make test``) builds the image with podman and runs
docker-compose.yml with podman-compose on base images made from Debian packages
(scripts/containers.sh installs and builds everything it needs; nothing is skipped: if podman
cannot run here, the rehearsal fails). It checks what a first ``docker compose up`` needs: the
image starts as its non-root user, migrate succeeds, web, worker and beat are healthy by their own
health checks, a 202 batch is flushed into MariaDB by the worker and the web scrape counts it,
pausing flushing holds off every flusher, stopping waits for an in-flight flush, and the data
(database and buffer) survives ``down`` + ``up``.

Two things podman-compose on this machine's podman (4.3, no systemd) does not do for us, so the
rehearsal does them the way Docker does: it runs each container's health check
(``podman healthcheck run``; podman schedules them with systemd timers), and it starts and stops
the services in dependency order, waiting on health (podman-compose ignores ``service_healthy``
before podman 4.6, and stops every container at once where Docker stops dependents first).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.processes import ROOT, free_port


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# --- static checks ---------------------------------------------------------------------------


def test_compose_has_the_production_services_with_health_checks_and_ordering():
    services = _compose()["services"]

    assert {"mariadb", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    assert services["mariadb"]["image"] == "${MARIADB_IMAGE:-mariadb:10.11}"
    for name in ("mariadb", "redis", "web", "worker", "beat"):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["mariadb"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["mariadb"]["condition"] == "service_healthy"


def test_compose_builds_the_image_once():
    services = _compose()["services"]

    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["migrate"]
    image = services["migrate"]["image"]
    assert {services[name]["image"] for name in ("web", "worker", "beat")} == {image}


def test_compose_stop_grace_periods_outlast_graceful_shutdowns():
    services = _compose()["services"]

    def seconds(value: str) -> int:
        return int(value.removesuffix("s"))

    assert seconds(services["web"]["stop_grace_period"]) > 30  # gunicorn graceful_timeout
    assert seconds(services["worker"]["stop_grace_period"]) >= 60  # a full-buffer flush, with room


def test_compose_health_checks_are_the_services_own_and_cheap():
    services = _compose()["services"]

    assert "curl" not in json.dumps(services["beat"]["healthcheck"])
    for name in ("worker", "beat"):
        assert "python" not in json.dumps(services[name]["healthcheck"]["test"]), name
        assert "celery -A" not in json.dumps(services[name]["healthcheck"]["test"]), name
    assert services["web"]["healthcheck"]["test"] == ["CMD", "/app/scripts/healthcheck-web.sh"]


def test_compose_web_and_worker_share_the_metrics_directory():
    services = _compose()["services"]

    assert services["web"]["volumes"] == services["worker"]["volumes"]
    assert services["web"]["volumes"][0].endswith(":/var/lib/persistence/metrics")
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_SHARED"] == "true"


def test_compose_redis_keeps_acknowledged_writes_across_restarts():
    command = _compose()["services"]["redis"]["command"]

    assert command[command.index("--appendonly") + 1] == "yes"


def test_compose_commands_name_modules_that_exist():
    services = _compose()["services"]

    assert "persistence_site" in services["worker"]["command"]
    assert (ROOT / "persistence_site" / "celery.py").exists()


def test_mysql_override_switches_the_database_to_mysql_84():
    override = yaml.safe_load((ROOT / "docker-compose.mysql.yml").read_text())

    assert override["services"]["mariadb"]["image"] == "${MYSQL_IMAGE:-mysql:8.4}"


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")
@pytest.mark.parametrize(
    "files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.mysql.yml"]]
)
def test_compose_file_validates(files):
    args = [arg for name in files for arg in ("-f", str(ROOT / name))]
    result = subprocess.run(
        ["docker-compose", *args, "config", "-q"],
        env={"SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def test_dockerfile_runs_gunicorn_as_a_non_root_user_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.M)
    assert re.search(r"^USER app$", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*healthcheck-web\.sh", dockerfile, re.M)
    cmd = re.search(r"^CMD \[(.*)\]$", dockerfile, re.M).group(1)
    assert '"gunicorn"' in cmd
    config = re.search(r'"-c", "([^"]+)"', cmd).group(1)
    assert (ROOT / config).exists()
    assert "requirements/prod.txt" in dockerfile


def test_dockerfile_sets_the_metrics_directory_only_after_the_root_steps():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert dockerfile.index("PROMETHEUS_MULTIPROC_DIR=") > dockerfile.index("USER app")
    assert dockerfile.index("PROMETHEUS_MULTIPROC_DIR=") > dockerfile.index("collectstatic")


def test_dockerignore_keeps_secrets_and_development_files_out_of_the_image():
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}

    assert {".env", ".env.*", ".git", "tests", "bench", "build", "dist", "**/*.egg-info"} <= patterns


# --- the rehearsal ---------------------------------------------------------------------------

HOST = "persistence.example.com"  # a real ALLOWED_HOSTS: 127.0.0.1 is refused
BUFFER = "persistence:{buffer}"
TASKS_IN_FLIGHT = (
    150_000  # 3/4 of BUFFER_CAPACITY: its flush outlasts Docker's default 10 s stop timeout here
)


class Stack:
    """One compose project: podman-compose with the rehearsal's environment, helpers to look in."""

    def __init__(self, reporter) -> None:
        self.report = reporter
        self.project = f"rehearsal{os.getpid()}"
        self.port = free_port()
        env = dict(os.environ)
        env.update(_containers_env())
        env.update(
            COMPOSE_PROJECT_NAME=self.project,
            SECRET_KEY=secrets.token_urlsafe(48),
            WEB_PORTS=f"127.0.0.1:{self.port}",
            ALLOWED_HOSTS=HOST,
            BUFFER_FLUSH_INTERVAL="5",
            DATABASE_ROOT_PASSWORD="rehearsal-root",
        )
        self.env = env
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, headers={"Host": HOST}, timeout=30)
        self.key = ""

    # -- running things --
    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.run(self.env["PODMAN_COMPOSE"], "--in-pod=false", *args, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def exec(self, service: str, *args: str, timeout: float = 120) -> str:
        return self.run("podman", "exec", self.container(service), *args, timeout=timeout).stdout

    def sql(self, query: str) -> str:
        return self.exec(
            "mariadb", "mariadb", "-uroot", f"-p{self.env['DATABASE_ROOT_PASSWORD']}", "-N", "-B", "persistence",
            "-e", query,
        ).strip()  # fmt: skip

    def count_tasks(self, session_id: str) -> int:
        return int(self.sql(f"SELECT COUNT(*) FROM translation_tasks WHERE session_id = '{session_id}'"))

    def redis(self, *args: str) -> str:
        return self.exec("redis", "redis-cli", *args).strip()

    def healthy(self, service: str) -> bool:
        return self.run("podman", "healthcheck", "run", self.container(service), check=False).returncode == 0

    def wait_healthy(self, services: list[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            pending = [service for service in pending if not self.healthy(service)]
            if pending and time.monotonic() > deadline:
                logs = {service: self.run("podman", "logs", "--tail", "30", self.container(service), check=False)
                        for service in pending}  # fmt: skip
                raise AssertionError(f"not healthy after {timeout:.0f} s: {pending}\n" + "\n".join(
                    f"--- {name}\n{result.stdout}{result.stderr}" for name, result in logs.items()))  # fmt: skip
            if pending:
                time.sleep(1)

    def up(self) -> float:
        """Start the stack in dependency order (see the module doc); the seconds it took."""
        started = time.monotonic()
        self.compose("up", "-d", "--no-build", "--no-deps", "mariadb", "redis")
        self.wait_healthy(["mariadb", "redis"])
        self.compose("up", "-d", "--no-build", "--no-deps", "migrate")
        exit_code = self.run("podman", "wait", self.container("migrate"), timeout=300).stdout.strip()
        migrate_log = self.run("podman", "logs", self.container("migrate"), check=False)
        assert exit_code == "0", f"migrate exited {exit_code}:\n{migrate_log.stdout}{migrate_log.stderr}"
        self.compose("up", "-d", "--no-build", "--no-deps", "web", "worker", "beat")
        self.wait_healthy(["web", "worker", "beat"])
        return time.monotonic() - started

    def stop(self, *services: str) -> float:
        started = time.monotonic()
        self.compose("stop", *services)
        return time.monotonic() - started

    def down(self, volumes: bool = False) -> None:
        """Docker's order: the application tier first, then what it depends on."""
        self.compose("stop", "web", "worker", "beat")
        self.compose("down", *(["-v"] if volumes else []))

    # -- the API --
    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return self.http.post(path, json=body, headers={"X-API-Key": self.key})

    def write_tasks(self, session_id: str, count: int) -> None:
        response = self.post("/api/v1/translation/sessions/batch", {"sessions": [_session(session_id)]})
        assert response.status_code == 202, response.text
        for start in range(0, count, 1000):
            tasks = [_task(session_id, i) for i in range(start, min(count, start + 1000))]
            response = self.post("/api/v1/translation/tasks/batch", {"tasks": tasks})
            assert response.status_code == 202, response.text

    def scrape(self) -> str:
        response = self.http.get("/api/v1/system/metrics", headers={"X-API-Key": self.key})
        assert response.status_code == 200, response.text
        return response.text


def _containers_env() -> dict[str, str]:
    out = subprocess.run(
        [str(ROOT / "scripts" / "containers.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout
    env = dict(re.findall(r"^export (\w+)='([^']*)'$", out, re.M))
    # One image per checkout: rehearsals of two work trees on one machine do not overwrite each other.
    env["PERSISTENCE_IMAGE"] = (
        "localhost/persistence-service:rehearsal-" + hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    )
    return env


def _logs(stack: Stack, service: str) -> str:
    result = stack.run("podman", "logs", stack.container(service))
    return result.stdout + result.stderr


def _session(session_id: str) -> dict:
    return {"session_id": session_id, "filename": "game.xlsx", "file_path": "/in/game.xlsx",
            "status": "processing", "llm_provider": "openai", "total_tasks": 0}  # fmt: skip


def _task(session_id: str, i: int) -> dict:
    return {"task_id": f"{session_id}-{i}", "session_id": session_id, "batch_id": "b1", "sheet_name": "Sheet1",
            "row_index": i, "column_name": "A", "source_text": "hello " * 40, "status": "pending"}  # fmt: skip


def _sample(scrape: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", scrape, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def reporter(request):
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def report(line: str) -> None:  # shown as it happens, with or without -s
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"rehearsal: {line}")

    return report


#: The image build (scripts/containers.sh setup, bases, image), started in the background as soon as
#: the suite knows the rehearsal is selected (conftest.py, pytest_collection_finish), so it runs
#: while the rest of the suite does; the rehearsal waits for it.
_build: subprocess.Popen | None = None
_BUILD_LOG = ROOT / "data" / "containers-build.log"
# compose's documented place for the secret: it must not reach the image (the first test checks).
_BUILD_SCRIPT = """
created=
if [ ! -e .env ]; then
  printf 'SECRET_KEY=rehearsal-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz\\n' > .env
  created=1
fi
trap '[ -n "$created" ] && rm -f .env' EXIT
for step in setup bases image; do
  started=$(date +%s)
  scripts/containers.sh "$step" || { echo "scripts/containers.sh $step failed"; exit 1; }
  echo "containers.sh $step: $(( $(date +%s) - started )) s"
done
"""


def start_build() -> None:
    """Start building the image in the background (once per run)."""
    global _build
    if _build is not None:
        return
    _BUILD_LOG.parent.mkdir(exist_ok=True)
    with _BUILD_LOG.open("w") as log:
        _build = subprocess.Popen(
            ["bash", "-c", _BUILD_SCRIPT], cwd=ROOT, env={**os.environ, **_containers_env()},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def stack(reporter) -> Iterator[Stack]:
    started = time.monotonic()
    start_build()  # a no-op when the suite started it already
    assert _build is not None
    returncode = _build.wait(timeout=1800)
    output = _BUILD_LOG.read_text()
    assert returncode == 0, f"the image build failed:\n{output[-8000:]}"
    for line in re.findall(r"^containers\.sh \w+: \d+ s$", output, re.M):
        reporter(line)
    reporter(f"waited {time.monotonic() - started:.0f} s for the background build")
    s = Stack(reporter)
    size = s.run("podman", "image", "inspect", "--format", "{{.Size}}", s.env["PERSISTENCE_IMAGE"]).stdout
    reporter(f"image {s.env['PERSISTENCE_IMAGE']}: {int(size) / 1e6:.0f} MB")
    try:
        startup = s.up()
        reporter(f"stack up and healthy (migrate ok; web, worker, beat healthy) in {startup:.0f} s")
        s.key = s.exec(
            "web", "python", "manage.py", "create_api_key", "rehearsal", "--scopes", "admin", "--quiet"
        ).strip()
        yield s
    finally:
        logs = s.run("podman", "ps", "-a", "--format", "{{.Names}} {{.Status}}", check=False).stdout
        s.compose("down", "-v")
        reporter(f"total {time.monotonic() - started:.0f} s; containers at the end:\n{logs}")


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(1800)
class TestRehearsal:
    def test_image_holds_no_secrets_tests_or_build_output(self, stack):
        listing = stack.run(
            "podman", "run", "--rm", "--entrypoint", "ls", stack.env["PERSISTENCE_IMAGE"], "-a", "/app"
        ).stdout.split()

        assert "manage.py" in listing
        for absent in (".env", ".git", "tests", "bench", "persistence_client", "docs", "containers"):
            assert absent not in listing, absent
        user = stack.run(
            "podman", "run", "--rm", "--entrypoint", "id", stack.env["PERSISTENCE_IMAGE"], "-un"
        ).stdout

        assert user.strip() == "app"

    def test_health_checks_use_an_allowed_host_and_leave_no_metric_files(self, stack):
        refused = stack.http.get("/health", headers={"Host": "127.0.0.1"})
        # The directory is shared with the worker, whose flushes (of events earlier tests caused)
        # may add files of its own meanwhile; files are named <host>-<pid>, so the web's are known.
        web_host = stack.exec("web", "hostname").strip()
        files_before = set(stack.exec("web", "ls", "/var/lib/persistence/metrics").split())
        for _ in range(3):
            assert stack.healthy("worker")
            assert stack.healthy("beat")
            assert stack.healthy("web")
        files_after = set(stack.exec("web", "ls", "/var/lib/persistence/metrics").split())

        assert refused.status_code == 400  # why a probe as 127.0.0.1 fails with a real ALLOWED_HOSTS
        assert stack.http.get("/health").json()["status"] == "healthy"
        assert any(f"_{web_host}-" in name for name in files_before)  # the web's files are named so
        assert not [name for name in files_after - files_before if f"_{web_host}-" in name]

    def test_a_batch_is_flushed_by_the_worker_and_the_web_scrape_counts_it(self, stack):
        session_id = str(uuid.uuid4())
        before = _sample(stack.scrape(), "persistence_flushed_items_total", type="task")
        started = time.monotonic()
        stack.write_tasks(session_id, 1500)  # no POST /flush: the worker (size trigger, beat) flushes
        while stack.count_tasks(session_id) < 1500:
            assert time.monotonic() - started < 60, "the worker did not flush within 60 s"
            time.sleep(0.5)
        stored_after = time.monotonic() - started
        worker_log = _logs(stack, "worker")
        scrape = stack.scrape()
        counted = _sample(scrape, "persistence_flushed_items_total", type="task") - before

        assert "storage_backends.tasks.flush_buffer" in worker_log
        assert counted >= 1500  # web processes never flushed: these are the worker's counters
        assert re.search(r'^persistence_flush_total\{type="task"\} [1-9]', scrape, re.M)
        stack.report(f"1500 tasks: 202 then in MariaDB via the worker after {stored_after:.1f} s; "
                     f"web scrape: persistence_flushed_items_total{{type=\"task\"}} +{counted:.0f}")  # fmt: skip

    def test_admin_login_over_plain_http_passes_csrf(self, stack):
        with httpx.Client(base_url=stack.url, headers={"Host": HOST}, timeout=30) as browser:
            page = browser.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            response = browser.post(
                "/admin/login/",
                data={"csrfmiddlewaretoken": token, "username": "nobody", "password": "wrong"},
            )

        assert "secure" not in page.headers["set-cookie"].lower()
        assert response.status_code == 200  # the form again (wrong password), not 403 CSRF
        assert "CSRF" not in response.text

    def test_pause_flushing_stops_every_flusher_and_stop_waits_for_the_flush_in_flight(self, stack):
        session_id = str(uuid.uuid4())
        pause = ["sh", "-c", "echo $$ > /tmp/pause.pid; exec python manage.py pause_flushing"]
        pauser = subprocess.Popen(["podman", "exec", stack.container("web"), *pause], env=stack.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            assert "flushing paused" in pauser.stdout.readline()
            stack.write_tasks(session_id, TASKS_IN_FLIGHT)
            refused = stack.post("/api/v1/translation/flush")
            time.sleep(6)  # a beat interval: its flush and the size trigger's must skip
            assert stack.count_tasks(session_id) == 0
            assert refused.status_code == 503, refused.text
        finally:
            stack.exec("web", "sh", "-c", "kill -TERM $(cat /tmp/pause.pid)")
            out, _ = pauser.communicate(timeout=60)
        assert "flushing resumed" in out

        lock = f"{BUFFER}:lock:translation_tasks"
        deadline = time.monotonic() + 60
        while stack.redis("EXISTS", lock) != "1":  # beat's next flush, on the worker
            assert time.monotonic() < deadline, "no flush started within 60 s after the pause"
            time.sleep(0.05)
        stored_at_stop = stack.count_tasks(session_id)
        stop_seconds = stack.stop("worker")
        stored = stack.count_tasks(session_id)
        worker_log = _logs(stack, "worker")

        assert stored_at_stop < TASKS_IN_FLIGHT  # the stop came while the flush was running
        assert stored == TASKS_IN_FLIGHT  # ... and it waited for the flush to finish
        assert stack.redis("EXISTS", lock) == "0"
        assert "Warm shutdown" in worker_log
        stack.report(f"pause: POST /flush 503, nothing stored while paused; stop worker mid-flush "
                     f"({stored_at_stop} of {TASKS_IN_FLIGHT} stored at SIGTERM) took {stop_seconds:.1f} s"
                     f"{' (a 10 s default would have killed it)' if stop_seconds > 10 else ''}, "
                     f"then {stored} stored")  # fmt: skip

    def test_data_survives_down_and_up(self, stack):
        flushed = stack.sql("SELECT COUNT(*) FROM translation_tasks")
        stack.stop("beat")  # no flusher left: what is written next stays in Redis through down/up
        session_id = str(uuid.uuid4())
        stack.write_tasks(session_id, 10)
        assert stack.count_tasks(session_id) == 0

        stack.down()
        assert stack.run("podman", "ps", "-a", "--filter", f"name={stack.project}", "-q").stdout.strip() == ""
        startup = stack.up()
        deadline = time.monotonic() + 60
        while stack.count_tasks(session_id) < 10:  # buffered before down, flushed after up
            assert time.monotonic() < deadline, "the buffered tasks did not reach MariaDB after up"
            time.sleep(0.5)

        assert stack.sql("SELECT COUNT(*) FROM translation_tasks") == str(int(flushed) + 10)
        stack.report(f"down + up ({startup:.0f} s to healthy): {flushed} stored tasks kept, "
                     "10 buffered tasks kept in Redis and flushed after up")  # fmt: skip
