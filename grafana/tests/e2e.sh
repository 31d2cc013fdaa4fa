#!/usr/bin/env bash
# End-to-end check of grafana/: a real Prometheus (Debian's `prometheus`) loads the rule files as
# they are and scrapes the real pgwatchdog daemon, which watches a throwaway PostgreSQL cluster.
# Real faults follow; after each, what the alerts must (and must not) make of it is read from
# Prometheus's API. Then every dashboard, variable and rule expression is evaluated there
# (grafana/tools/e2e-check.mjs evaluate), and the metric names are cross-checked with the
# daemon's /metrics.
#
# Usage: grafana/tests/e2e.sh --daemon PATH_TO_pgwatchdog
#
# Starts and stops everything itself, under a fresh temp dir (in $PGWD_TEST_ROOT if set);
# PGWD_KEEP_TEST_ROOT=1 keeps that dir. Bounded: every wait has a deadline, and the whole run
# stops after $E2E_TIMEOUT seconds (default 150). As root, PostgreSQL runs as the user postgres.
#
# Targets: db (3 connections to the cluster, heartbeat 1s, LISTEN jobs) and badpw (the same
# server with a wrong password).
# Faults, in order: pg_terminate_backend of db's connections; the server stopped (fast) and
# started again; the daemon stopped.

# shellcheck disable=SC2317  # cleanup is reached through traps
set -euo pipefail

die() { echo "grafana e2e: $*" >&2; exit 2; }
step() { printf '\n==> [%ss] %s\n' "$((SECONDS))" "$*"; }

daemon=""
while (( $# )); do
  case "$1" in
    --daemon) (( $# >= 2 )) || die "--daemon needs a path"; daemon=$2; shift 2 ;;
    -h|--help) sed -n '2,19s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -x $daemon ]] || die "--daemon PATH must name the built pgwatchdog binary (got '${daemon}')"

grafana=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check() { node "$grafana/tools/e2e-check.mjs" "$@"; }
for tool in prometheus promtool node psql curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run scripts/install-deps"
done
bindir=/usr/lib/postgresql/15/bin
[[ -x $bindir/initdb ]] || die "PostgreSQL 15 server tools not found in $bindir; run scripts/install-deps"
bash "$grafana/tools/npm-ci.sh"

as_postgres=0
if (( EUID == 0 )); then
  id -u postgres >/dev/null 2>&1 || die "running as root but there is no OS user postgres"
  as_postgres=1
fi

# The whole run is bounded, whatever hangs: a watchdog timer ends it (and so runs the clean-up).
timeout_s=${E2E_TIMEOUT:-150}
# Its output goes nowhere, so that it holds no pipe of the caller open.
( exec >/dev/null 2>&1; sleep "$timeout_s"; kill -TERM $$ ) &
timer=$!

tmp=$(mktemp -d "${PGWD_TEST_ROOT:-/tmp}/grafana-e2e.XXXXXX")
chmod 755 "$tmp"
(( as_postgres )) && chown postgres: "$tmp"
daemon_pid=""
prom_pid=""

server_tool() {
  local tool=$1; shift
  if (( as_postgres )); then (cd "$tmp" && runuser -u postgres -- "$bindir/$tool" "$@"); else (cd "$tmp" && "$bindir/$tool" "$@"); fi
}
stop_pid() {
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  stop_pid "$daemon_pid"
  stop_pid "$prom_pid"
  [[ -f $tmp/data/postmaster.pid ]] && server_tool pg_ctl -D "$tmp/data" -m immediate -w -t 30 stop >/dev/null 2>&1
  if (( rc != 0 )); then
    for log in daemon.log prometheus.log server.log; do
      [[ -f $tmp/$log ]] && { echo "---- last lines of $log"; tail -n 30 "$tmp/$log"; } >&2
    done
  fi
  (( rc == 143 && SECONDS >= timeout_s )) && echo "grafana e2e: timed out after ${timeout_s}s" >&2
  pkill -P "$timer" sleep 2>/dev/null
  kill "$timer" 2>/dev/null
  if [[ ${PGWD_KEEP_TEST_ROOT:-0} == 1 ]]; then echo "grafana e2e: keeping $tmp" >&2; else rm -rf "$tmp"; fi
  if (( rc == 0 )); then echo "grafana e2e: passed in ${SECONDS}s"; else echo "grafana e2e: FAILED (exit $rc) after ${SECONDS}s" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A loopback TCP port nobody listens on now (bind to port 0, as the C++ tests do).
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
wait_http() { # URL SECONDS
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    (( SECONDS < deadline )) || die "$1 did not answer within $2 s"
    sleep 0.1
  done
}

# ---------------------------------------------------------------- PostgreSQL
step "throwaway PostgreSQL 15 cluster in $tmp"
server_tool initdb -D "$tmp/data" -U postgres -E UTF8 --no-locale --no-sync \
  --auth-local=trust --auth-host=scram-sha-256 >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; die "initdb failed"; }
pg_port=$(free_port)
printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nfsync = off\nsynchronous_commit = off\n" \
  "$pg_port" "$tmp" | { if (( as_postgres )); then runuser -u postgres -- tee -a "$tmp/data/postgresql.conf"; else tee -a "$tmp/data/postgresql.conf"; fi; } >/dev/null
server_tool pg_ctl -D "$tmp/data" -l "$tmp/server.log" -w -t 60 start >/dev/null
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$pg_port" -U postgres -d postgres "$@"; }
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
psql_admin >/dev/null <<<"CREATE ROLE watchdog LOGIN PASSWORD '$password';"

# ---------------------------------------------------------------- pgwatchdog
metrics_port=$(free_port)
(
  umask 077
  cat >"$tmp/pgwatchdog.yaml" <<EOF
listen: "127.0.0.1:$metrics_port"
defaults:
  backoff_max: 1s
targets:
  - name: db
    dsn: "host=127.0.0.1 port=$pg_port dbname=postgres user=watchdog password=$password application_name=pgwd-e2e-db"
    connections: 3
    heartbeat: 1s
    listen_channels: [jobs]
  - name: badpw
    dsn: "host=127.0.0.1 port=$pg_port dbname=postgres user=watchdog password=not-$password application_name=pgwd-e2e-badpw"
    connections: 1
  # A Patroni cluster whose REST API does not answer: its own series (discovery, members,
  # primaries) are exported with zeros, which the Patroni alerts need to be checked against.
  - name: ha
    patroni: ["http://127.0.0.1:1"]
EOF
)
step "pgwatchdog on 127.0.0.1:$metrics_port"
"$daemon" --config "$tmp/pgwatchdog.yaml" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
wait_http "http://127.0.0.1:$metrics_port/metrics" 15

# ---------------------------------------------------------------- Prometheus
prom_port=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - $grafana/prometheus/pgwatchdog-rules.yaml
  - $grafana/prometheus/pgwatchdog-alerts.yaml
scrape_configs:
  - job_name: pgwatchdog
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
promtool check config "$tmp/prometheus.yml" >/dev/null
step "Prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}') on 127.0.0.1:$prom_port (rules loaded as they are)"
E2E_START=$(date +%s)
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
export PROM_URL="http://127.0.0.1:$prom_port" DAEMON_METRICS_URL="http://127.0.0.1:$metrics_port/metrics" E2E_START
wait_http "$PROM_URL/-/ready" 30

step "steady state: db up, badpw down"
check wait-series 'pgwatchdog_up{target="db"} == 1' 30
check wait-series 'pgwatchdog_up{target="badpw"} == 0' 30
check wait-series 'pgwatchdog_probes_total{target="db",result="ok"} > 0' 30
psql_admin -c "NOTIFY jobs, 'from the e2e test'" >/dev/null
check wait-series 'pgwatchdog_notifications_total{target="db"} > 0' 15

step "wrong password on badpw: a ticket (AuthFailing), not a page (TargetDown)"
check wait-alert PgWatchdogAuthFailing badpw 30
check no-alert PgWatchdogTargetDown badpw

step "fault: pg_terminate_backend on db's 3 connections"
psql_admin -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pgwd-e2e-db'" >/dev/null
check wait-series 'pgwatchdog_disconnects_total{target="db",cause="server_shutdown"} >= 3' 20
check wait-series 'pgwatchdog_outage_seconds_count{target="db"} >= 3' 20
check wait-series 'pgwatchdog_connections{target="db",state="healthy"} == 3' 20
check wait-series 'target:pgwatchdog_disconnects:rate5m{target="db"} > 0' 20
check no-alert PgWatchdogTargetFlapping db
check no-alert PgWatchdogReconnectsFailing db

step "fault: the server stops (fast shutdown)"
server_tool pg_ctl -D "$tmp/data" -m fast -w -t 30 stop >/dev/null
check wait-alert PgWatchdogTargetDown db 30
check no-alert PgWatchdogReconnectsFailing db
step "the server starts again"
server_tool pg_ctl -D "$tmp/data" -l "$tmp/server.log" -w -t 60 start >/dev/null
check wait-series 'pgwatchdog_connections{target="db",state="healthy"} == 3' 30
check wait-series 'target:pgwatchdog_in_hot_standby:while_up{target="db"}' 15
check no-alert PgWatchdogRoleChanged db
check no-alert PgWatchdogWrongRole db

step "every dashboard, variable and rule expression against this Prometheus"
check evaluate

step "fault: the daemon stops"
stop_pid "$daemon_pid"
daemon_pid=""
check wait-alert PgWatchdogNotScraped - 30
