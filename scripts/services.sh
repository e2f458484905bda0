#!/usr/bin/env bash
# Makes sure MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) answer, starting them when they
# are installed and stopped. Used by the test command and CI.
# Also starts moto_server (an S3-compatible server, moto[server] from requirements/dev.txt) on
# 127.0.0.1:${FILES_TEST_S3_PORT:-9000} for the files tests' s3 backend (tests/files/conftest.py),
# and osmem-server (an in-memory OpenSearch-API emulator, osmem-server from requirements/dev.txt) on
# 127.0.0.1:${AUDIT_TEST_SEARCH_PORT:-9200} for the audit search plugin's tests (tests/audit/).
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT NAME
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "services: $2 did not come up on 127.0.0.1:$1" >&2
  return 1
}

if ! port_open 6379; then
  if command -v redis-server >/dev/null; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  else
    echo "services: Redis is not running and redis-server is not installed" >&2
  fi
fi
if ! port_open 3306; then
  if [ -x /usr/sbin/mariadbd ]; then
    echo "services: starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  else
    echo "services: MariaDB is not running and mariadbd is not installed" >&2
  fi
fi
S3_PORT="${FILES_TEST_S3_PORT:-9000}"
if ! port_open "$S3_PORT"; then
  MOTO="$(dirname "$0")/../.venv/bin/moto_server"
  if [ -x "$MOTO" ]; then
    echo "services: starting moto_server (S3) on 127.0.0.1:$S3_PORT"
    mkdir -p "$(dirname "$0")/../data"
    nohup "$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$(dirname "$0")/../data/moto_server.log" 2>&1 &
  else
    echo "services: moto_server is not installed (scripts/bootstrap.sh dev installs it)" >&2
  fi
fi
SEARCH_PORT="${AUDIT_TEST_SEARCH_PORT:-9200}"
if ! port_open "$SEARCH_PORT"; then
  # The pip package bundles the server binary (no console script): ask it where.
  OSMEM="$("$(dirname "$0")/../.venv/bin/python" -c 'import osmem_server; print(osmem_server.resolve_binary())' 2>/dev/null)"
  if [ -n "$OSMEM" ] && [ -x "$OSMEM" ]; then
    echo "services: starting osmem-server (OpenSearch API) on 127.0.0.1:$SEARCH_PORT"
    mkdir -p "$(dirname "$0")/../data"
    # -no-stdin-watch: it outlives this script (it would exit when its stdin closes).
    nohup "$OSMEM" -addr "127.0.0.1:$SEARCH_PORT" -no-stdin-watch </dev/null \
      >"$(dirname "$0")/../data/osmem_server.log" 2>&1 &
  else
    echo "services: osmem-server is not installed (scripts/bootstrap.sh dev installs it)" >&2
  fi
fi
wait_port 6379 Redis && wait_port 3306 MariaDB && wait_port "$S3_PORT" moto_server \
  && wait_port "$SEARCH_PORT" osmem-server
