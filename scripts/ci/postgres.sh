#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the registry's tests and prints its URL:
#   url=$(bash scripts/ci/postgres.sh DIR)     # stop: bash scripts/ci/postgres.sh DIR stop
# Installs Debian's postgresql when missing (root). The server runs as the postgres user with
# its data in DIR, listens on 127.0.0.1:${KEEL_TEST_PG_PORT:-55432} only, trusts local logins.
set -euo pipefail
dir=${1:?usage: postgres.sh DIR [stop]}
port=${KEEL_TEST_PG_PORT:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ "${2:-}" = stop ]; then
  [ -n "$bin" ] && [ -d "$dir/data" ] && su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -m fast stop" >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  [ "$(id -u)" = 0 ] || { echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql) and this is not root" >&2; exit 1; }
  # the package must not start a server of its own on this machine
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
mkdir -p "$dir"
chown postgres "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
  su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U keel -E UTF8" >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
fi
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -w -l '$dir/server.log' -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off\" start" >/dev/null \
  || { tail -20 "$dir/server.log" >&2; exit 1; }
echo "postgres://keel@127.0.0.1:$port/postgres"
