# A throwaway PostgreSQL 15 cluster for shell tests: sourced, not run.
#
#   source tests/support/throwaway-cluster.sh
#   cluster_start DIR        # initdb + start in DIR/data, on a free loopback port; sets CLUSTER_PORT
#   cluster_psql ARGS...     # psql as the superuser postgres over the unix socket in DIR
#   cluster_stop             # immediate stop; safe to call when nothing was started (clean-up traps)
#
# As root the server runs as the OS user postgres (initdb refuses root), so DIR is handed to it.
# Trust for local connections, scram-sha-256 over TCP; fsync off: nothing here must survive.
# shellcheck shell=bash

CLUSTER_BINDIR=/usr/lib/postgresql/15/bin
CLUSTER_DIR=""
CLUSTER_PORT=""

cluster_tool() {
  local tool=$1; shift
  if (( EUID == 0 )); then
    (cd "$CLUSTER_DIR" && runuser -u postgres -- "$CLUSTER_BINDIR/$tool" "$@")
  else
    (cd "$CLUSTER_DIR" && "$CLUSTER_BINDIR/$tool" "$@")
  fi
}

cluster_start() {
  CLUSTER_DIR=$1
  [[ -x $CLUSTER_BINDIR/initdb ]] ||
    { echo "PostgreSQL 15 server tools not found in $CLUSTER_BINDIR; run scripts/install-deps" >&2; return 1; }
  if (( EUID == 0 )); then
    id -u postgres >/dev/null 2>&1 || { echo "running as root but there is no OS user postgres" >&2; return 1; }
    chmod 755 "$CLUSTER_DIR"
    chown postgres: "$CLUSTER_DIR"
  fi
  cluster_tool initdb -D "$CLUSTER_DIR/data" -U postgres -E UTF8 --no-locale --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$CLUSTER_DIR/initdb.log" 2>&1 ||
    { cat "$CLUSTER_DIR/initdb.log" >&2; return 1; }
  printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\n" \
    "$CLUSTER_DIR" | cluster_tool_append "$CLUSTER_DIR/data/postgresql.conf"
  # A port from a range the other tests do not use, retried when something holds it already.
  local attempt candidate
  for (( attempt = 1; attempt <= 8; ++attempt )); do
    candidate=$(( 56000 + RANDOM % 4000 ))
    if cluster_tool pg_ctl -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -o "-p $candidate" \
        -w -t 60 start >/dev/null 2>&1; then
      CLUSTER_PORT=$candidate
      return 0
    fi
  done
  tail -n 20 "$CLUSTER_DIR/server.log" >&2 || true
  echo "could not start PostgreSQL in $CLUSTER_DIR" >&2
  return 1
}

# Appends stdin to FILE as the cluster's owner (as root the data dir belongs to postgres).
cluster_tool_append() {
  if (( EUID == 0 )); then runuser -u postgres -- tee -a "$1" >/dev/null; else tee -a "$1" >/dev/null; fi
}

cluster_psql() {
  "$CLUSTER_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$CLUSTER_DIR" -p "$CLUSTER_PORT" -U postgres \
    -d postgres "$@"
}

cluster_stop() {
  [[ -n $CLUSTER_DIR && -f $CLUSTER_DIR/data/postmaster.pid ]] || return 0
  cluster_tool pg_ctl -D "$CLUSTER_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}
