#!/bin/sh
# Health check of a web container (Dockerfile HEALTHCHECK, docker-compose.yml): GET /health on
# this container's gunicorn with a Host header that ALLOWED_HOSTS accepts. Django answers 400 to
# a Host it does not allow, so probing as 127.0.0.1 fails wherever ALLOWED_HOSTS names the real
# host. HEALTHCHECK_HOST overrides; otherwise the first entry of ALLOWED_HOSTS is used
# (".example.com" probes as "example.com", "*" as "localhost").
host="${HEALTHCHECK_HOST:-}"
if [ -z "$host" ]; then
  host=$(printf '%s' "${ALLOWED_HOSTS:-localhost}" | cut -d, -f1 | tr -d ' ')
  host="${host#.}"
  [ -z "$host" ] || [ "$host" = "*" ] && host=localhost
fi
port="${BIND:-0.0.0.0:8000}"
port="${port##*:}"
exec curl -fsS -o /dev/null --max-time 4 -H "Host: $host" "http://127.0.0.1:$port/health"
