#!/usr/bin/env bash
# Set everything up and run the full test suite against real MariaDB and Redis.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not slow" -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
scripts/services.sh
export DJANGO_SETTINGS_MODULE=persistence_site.settings.test
exec .venv/bin/python -m pytest "$@"
