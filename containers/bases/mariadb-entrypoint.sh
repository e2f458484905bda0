#!/bin/bash
# First start: create the system tables, the root password, MARIADB_DATABASE and MARIADB_USER
# (MYSQL_* accepted too, as the official image does), then run the server on all addresses.
set -euo pipefail
if [ "${1#-}" != "$1" ]; then set -- mariadbd "$@"; fi
if [ "$1" != mariadbd ] && [ "$1" != mysqld ]; then exec "$@"; fi
shift
root_password="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
database="${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}"
user="${MARIADB_USER:-${MYSQL_USER:-}}"
password="${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}"
datadir=/var/lib/mysql
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld "$datadir"
if [ ! -d "$datadir/mysql" ]; then
  [ -n "$root_password" ] || { echo "entrypoint: set MARIADB_ROOT_PASSWORD" >&2; exit 1; }
  echo "entrypoint: initialising $datadir"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
    --auth-root-authentication-method=normal >/dev/null
  mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  for _ in $(seq 1 60); do mariadb-admin --socket=/run/mysqld/init.sock ping >/dev/null 2>&1 && break; sleep 0.5; done
  esc() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
  {
    echo "DELETE FROM mysql.global_priv WHERE User='';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$(esc "$root_password")';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$(esc "$root_password")';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$database" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$database\`;"; fi
    if [ -n "$user" ]; then
      echo "CREATE USER '$(esc "$user")'@'%' IDENTIFIED BY '$(esc "$password")';"
      if [ -n "$database" ]; then echo "GRANT ALL ON \`$database\`.* TO '$(esc "$user")'@'%';"; fi
    fi
    echo "FLUSH PRIVILEGES;"
  } | mariadb --socket=/run/mysqld/init.sock -uroot
  mariadb-admin --socket=/run/mysqld/init.sock -uroot -p"$root_password" shutdown
  wait "$pid" || true
  echo "entrypoint: initialised"
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --skip-name-resolve "$@"
