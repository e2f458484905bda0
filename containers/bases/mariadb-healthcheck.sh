#!/bin/sh
# Minimal stand-in for the official image's healthcheck.sh (--connect --innodb_initialized):
# the server answers on TCP once it is past start-up (ping's status is 0 even on access denied).
exec mariadb-admin --protocol=tcp -h 127.0.0.1 --connect-timeout=3 ping >/dev/null 2>&1
