#!/usr/bin/env bash
# Quick start: set everything up and run the service on the embedded default
# (SQLite, with the write buffer as a table in the same file) at http://127.0.0.1:8000.
# DATABASE_URL / REDIS_URL switch to MySQL/Redis. Ctrl-C stops it; shutdown flushes the buffer,
# and a 202 is on disk even if the server is killed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh prod
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-persistence_site.settings.local}"
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v0
# Every /api/v1/ request needs an X-API-Key: make (once) and print a development key, kept in
# data/dev-api-key. API_AUTH_ENABLED=false turns keys off instead (local development only).
.venv/bin/python manage.py ensure_dev_api_key --base-url "http://${BIND:-127.0.0.1:8000}" \
  || echo "run.sh: no development API key printed; create one with: manage.py create_api_key NAME --scopes admin" >&2
exec .venv/bin/gunicorn persistence_site.wsgi:application -c persistence_site/gunicorn_conf.py \
  --bind "${BIND:-127.0.0.1:8000}" --workers 1 --threads "${THREADS:-8}"
