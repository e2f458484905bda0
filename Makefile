# The targets people reach for. `make run` and `make test` are the README's two commands.
.PHONY: setup run test lint format worker beat bench load migrate chaos containers

PYTEST_ARGS ?=
VENV := .venv/bin

setup:          ## install everything (venv, requirements, system packages when possible)
	scripts/bootstrap.sh dev

run:            ## set up and run the service on the embedded default at http://127.0.0.1:8000
	scripts/run.sh

test:           ## set up and run the full test suite against MariaDB and Redis
	scripts/test.sh $(PYTEST_ARGS)

lint:           ## ruff lint + format check, import contracts (import-linter), mypy strict on core/storage/client
	$(VENV)/ruff check . && $(VENV)/ruff format --check . && $(VENV)/lint-imports && $(VENV)/mypy

format:
	$(VENV)/ruff check --fix . && $(VENV)/ruff format .

chaos:          ## the fault suite alone: prints accepted/stored/lost/stale per fault
	scripts/test.sh -m chaos -s -p no:cacheprovider

containers:     ## the container rehearsal alone: podman + podman-compose run the Dockerfile and docker-compose.yml
	scripts/test.sh tests/test_containers.py -m container -p no:cacheprovider

migrate:
	$(VENV)/python manage.py migrate

# The Celery app defaults to the production settings (like wsgi/asgi); a developer's worker and beat
# use the local ones unless DJANGO_SETTINGS_MODULE says otherwise.
DEV_SETTINGS := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-persistence_site.settings.local}

worker:         ## Celery worker (needs REDIS_URL)
	$(DEV_SETTINGS) $(VENV)/celery -A persistence_site worker --loglevel=INFO --concurrency=2

beat:           ## Celery beat: run exactly one
	$(DEV_SETTINGS) $(VENV)/celery -A persistence_site beat --loglevel=INFO

bench:          ## benchmarks against MariaDB + Redis; print figures
	scripts/bootstrap.sh dev && scripts/services.sh && $(VENV)/python bench/ingest.py

load:           ## load test (locust, 60 s) and multi-instance run against MariaDB + Redis; print figures
	scripts/bootstrap.sh dev && scripts/services.sh && $(VENV)/pip install -q -r requirements/bench.txt \
		&& $(VENV)/python bench/load.py && $(VENV)/python bench/multi_instance.py
