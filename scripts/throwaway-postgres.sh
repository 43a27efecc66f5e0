#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests: `start DIR PORT` prints its URL, `stop DIR` ends it.
# initdb refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

action=${1:?usage: throwaway-postgres.sh start DIR PORT | stop DIR}
dir=$(realpath -m "${2:?directory}")

bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/initdb" ] && bindir=$candidate
done
if [ -z "$bindir" ]; then
  echo "throwaway-postgres: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 3
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    port=${3:?port}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust >"$dir/initdb.log" 2>&1
    fi
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
      start >/dev/null
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: throwaway-postgres.sh start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
