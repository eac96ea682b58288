#!/usr/bin/env bash
# Make sure MariaDB/MySQL and PostgreSQL answer on 127.0.0.1 for the tests and the demo:
# use running servers; else start installed ones; else (as root) install them with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
log() { echo "services: $*" >&2; }
ok() { $PY scripts/check_services.py "$1" 2>/dev/null; }
as_root() { [ "$(id -u)" = 0 ]; }

start_service() {  # try the init system, then the distribution's helpers
  local name=$1
  if command -v systemctl >/dev/null && systemctl list-unit-files "$name.service" >/dev/null 2>&1 \
      && [ -d /run/systemd/system ]; then
    systemctl start "$name" && return 0
  fi
  command -v service >/dev/null && service "$name" start >/dev/null 2>&1 && return 0
  return 1
}

apt_install() {
  log "installing $* with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {
  for _ in $(seq 1 30); do ok "$1" && return 0; sleep 1; done
  return 1
}

ensure_mysql() {
  ok mysql && return 0
  if ! command -v mariadbd >/dev/null && ! command -v mysqld >/dev/null && [ ! -x /usr/sbin/mariadbd ] \
      && [ ! -x /usr/sbin/mysqld ]; then
    as_root || { log "MariaDB is not installed: run 'sudo apt-get install mariadb-server' (or point TEST_MYSQL_* at a server)"; exit 1; }
    apt_install mariadb-server mariadb-client
  fi
  log "starting MariaDB"
  start_service mariadb || start_service mysql || {
    (mysqld_safe >/dev/null 2>&1 &) ; }
  if ! wait_for mysql && as_root; then
    # A fresh Debian install lets root in only through the unix socket: allow TCP with an empty password too.
    mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" \
      2>/dev/null || true
  fi
  wait_for mysql || { $PY scripts/check_services.py mysql; log "MariaDB did not become reachable"; exit 1; }
}

ensure_postgres() {
  ok postgres && return 0
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    as_root || { log "PostgreSQL is not installed: run 'sudo apt-get install postgresql' (or point TEST_PG_* at a server)"; exit 1; }
    apt_install postgresql
  fi
  log "starting PostgreSQL"
  start_service postgresql || { command -v pg_ctlcluster >/dev/null && pg_ctlcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main start; } || true
  if ! wait_for postgres && as_root; then
    # Local test servers only: trust TCP connections from this machine.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      grep -q "course-inventory tests" "$hba" || sed -i '1i host all all 127.0.0.1/32 trust # course-inventory tests' "$hba"
    done
    start_service postgresql >/dev/null 2>&1 || true
    command -v service >/dev/null && service postgresql reload >/dev/null 2>&1 || true
  fi
  wait_for postgres || { $PY scripts/check_services.py postgres; log "PostgreSQL did not become reachable"; exit 1; }
}

ensure_mysql
ensure_postgres
log "MariaDB and PostgreSQL are reachable"
