#!/usr/bin/env bash
# Sets up everything the service needs on this machine: system packages (when we can install
# them), a virtualenv in .venv, the pinned requirements. Idempotent: re-running is cheap.
#   scripts/bootstrap.sh prod   # runtime (mysqlclient when its headers can be had)
#   scripts/bootstrap.sh dev    # runtime + test tools + the browser for admin tests
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-prod}"
PYTHON="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {  # apt_install PKG... : install missing Debian packages when we are allowed to
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || return 1
  echo "bootstrap: installing system packages: ${missing[*]}"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

have_mysql_headers=yes
apt_install libmariadb-dev pkg-config || have_mysql_headers=no
if [ "$profile" = dev ]; then
  apt_install chromium || echo "bootstrap: chromium not installed; browser tests will be skipped" >&2
  apt_install docker-compose || echo "bootstrap: docker-compose not installed; compose validation skipped" >&2
  apt_install prometheus || echo "bootstrap: prometheus (promtool) not installed; alert-rule checks skipped" >&2
  apt_install apache2-utils || echo "bootstrap: apache2-utils (ab) not installed; bench/query.py needs it" >&2
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.requirements-$profile"
reqs=requirements/$profile.txt
if [ "$profile" = prod ] && [ "$have_mysql_headers" = no ] && ! pkg-config --exists libmariadb mysqlclient 2>/dev/null; then
  echo "bootstrap: MySQL client headers unavailable; installing without mysqlclient (SQLite only)" >&2
  reqs=requirements/base.txt
fi
if [ ! -f "$stamp" ] || [ -n "$(find requirements -newer "$stamp" -name '*.txt')" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$reqs"
  touch "$stamp"
fi
