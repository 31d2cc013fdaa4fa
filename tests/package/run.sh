#!/usr/bin/env bash
# Debian package test: the packages of scripts/build-deb installed into a fresh Debian 12 root
# (a podman container from the minbase image scripts/build-image makes with mmdebstrap), used,
# removed and purged, against a throwaway PostgreSQL 15 cluster on the host.
#
# Usage: tests/package/run.sh [--debs DIR]
#
#   --debs DIR   use the packages in DIR (default: build them with scripts/build-deb first)
#
# Checks, each with a deadline: apt installs pgwatchdog, libpgwatchdog0.3 and libpgwatchdog-dev
# with their dependencies; the system user pgwatchdog exists; /etc/pgwatchdog/pgwatchdog.yaml is
# a conffile of mode 0640, root:pgwatchdog (a dpkg statoverride); the daemon, started with the
# unit's ExecStart= and /etc/default/pgwatchdog's ARGS as the unit's User=, serves
# pgwatchdog_up{target="db"} 1, reloads on the unit's ExecReload= and ends with status 0 on
# SIGTERM, and its log shows no password; examples/ builds against the installed -dev package
# (find_package and pkg-config) and an example connects; `apt-get remove` keeps the conffiles,
# `dpkg --purge` leaves no file of the packages, no statoverride and no systemd state: only the
# system user and group, which Debian keeps. Then the same pgwatchdog package under a real
# systemd as PID 1 (tests/package/systemd.sh: start, reload and stop with systemctl, the unit's
# hardening in force). Container, cluster and temp files are removed on every exit path.
set -euo pipefail

test_name="package test"
test_options="--debs"
# shellcheck source=tests/support/operator-test.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/operator-test.sh" "$@"
on_failure() {
  if [[ -n $container && -n $tmp && -f $tmp/daemon.log ]]; then
    echo "---- daemon log" >&2
    tail -n 40 "$tmp/daemon.log" >&2
  fi
}
tmp=$(mktemp -d /tmp/pgwd-package.XXXXXX)
chmod 755 "$tmp"   # the cluster below runs as postgres

# in_root SCRIPT: runs bash -c SCRIPT as root in the container (set -euo pipefail).
in_root() { "${PODMAN[@]}" exec -i "$container" bash -c "set -euo pipefail; $1"; }

# --- the packages and the root -------------------------------------------------------------
if [[ -z $debs ]]; then
  debs=$tmp/debs
  bash "$root/scripts/build-deb" --out "$debs" </dev/null
fi
packages=()
for name in pgwatchdog libpgwatchdog0.3 libpgwatchdog-dev; do
  deb=$(ls "$debs/${name}_${version}_"*.deb 2>/dev/null | head -n1 || true)
  [[ -n $deb ]] || die "no ${name}_${version}_*.deb in $debs"
  packages+=("/debs/$(basename "$deb")")
done
bash "$root/scripts/build-image" --base-only </dev/null

step "Throwaway PostgreSQL 15 cluster in $tmp/cluster"
mkdir "$tmp/cluster"
cluster_start "$tmp/cluster"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
cluster_psql >/dev/null <<<"CREATE ROLE watchdog LOGIN PASSWORD '$password';"
dsn="host=127.0.0.1 port=$CLUSTER_PORT dbname=postgres user=watchdog password=$password"

metrics_port=$(free_loopback_port) || metrics_port=""
[[ -n $metrics_port ]] || die "found no free loopback port"

container=pgwd-package-test-$$
step "A fresh Debian 12 root: $base_image as $container"
"${PODMAN[@]}" run -d --name "$container" --network host "${PODMAN_ULIMITS[@]}" \
  --volume "$debs:/debs:ro" --volume "$root/examples:/src/examples:ro" \
  --entrypoint sleep "$base_image" infinity >/dev/null
# The base leaves out man pages and docs (a smaller image); here everything the packages hold
# must be installed and then purged.
in_root 'rm -f /etc/dpkg/dpkg.cfg.d/99mmdebstrap'

step "apt-get install ${packages[*]##*/} (and a compiler for the examples)"
install_start=$SECONDS
in_root "export DEBIAN_FRONTEND=noninteractive
  for attempt in 1 2 3; do apt-get -q update && break; sleep 5; done
  apt-get -q install -y --no-install-recommends ${packages[*]} g++ make cmake pkgconf >/tmp/apt.log 2>&1 ||
    { tail -n 30 /tmp/apt.log; exit 1; }"
step "Installed in $((SECONDS - install_start)) s"

# --- what the packages installed -------------------------------------------------------------
step "The system user, the conffiles and their modes"
in_root '
  id pgwatchdog
  uid=$(id -u pgwatchdog)
  (( uid < 1000 )) || { echo "pgwatchdog is uid $uid, not a system user"; exit 1; }
  [[ $(getent passwd pgwatchdog | cut -d: -f7) == /usr/sbin/nologin ]]
  mode=$(stat -c "%a %U %G" /etc/pgwatchdog/pgwatchdog.yaml)
  [[ $mode == "640 root pgwatchdog" ]] || { echo "pgwatchdog.yaml is $mode, not 640 root pgwatchdog"; exit 1; }
  dpkg-statoverride --list /etc/pgwatchdog/pgwatchdog.yaml
  conffiles=$(dpkg-query -W -f="\${Conffiles}\n" pgwatchdog)
  grep -q "^ /etc/pgwatchdog/pgwatchdog.yaml " <<<"$conffiles"
  grep -q "^ /etc/default/pgwatchdog " <<<"$conffiles"
  test -f /lib/systemd/system/pgwatchdog.service
  test -f /usr/share/man/man1/pgwatchdog.1.gz
  test -f /usr/share/man/man5/pgwatchdog.yaml.5.gz
  test -f /usr/share/doc/pgwatchdog/examples/local-only.conf
  [[ $(pgwatchdog --version) == "pgwatchdog '"$version"'" ]]
  # The shipped config loads (it has no target: one is given here).
  pgwatchdog --config /etc/pgwatchdog/pgwatchdog.yaml --target probe=host=db.invalid --check-config >/dev/null
  echo "uid $uid, pgwatchdog.yaml $mode, conffiles, unit, man pages and the local-only drop-in in place"'

# --- the daemon, as the unit runs it ---------------------------------------------------------
step "The daemon with the unit's command line, as its User= (the cluster on port $CLUSTER_PORT)"
"${PODMAN[@]}" exec -i "$container" sh -c 'cat >/etc/pgwatchdog/pgwatchdog.yaml' <<CONFIG
listen: "127.0.0.1:$metrics_port"
defaults:
  backoff_max: 1s
targets:
  - name: db
    dsn: "$dsn application_name=pgwd-package"
    connections: 2
CONFIG
in_root 'echo "ARGS=\"--log-format json\"" >/etc/default/pgwatchdog'
# What systemd would do, without systemd: the unit's ExecStart= with $ARGS from its
# EnvironmentFile= (split at spaces), as its User= and Group=, without new privileges.
in_root 'cat >/tmp/run-unit <<"SCRIPT"
#!/bin/bash
set -euo pipefail
unit=/lib/systemd/system/pgwatchdog.service
exec_start=$(sed -n "s/^ExecStart=//p" $unit)
user=$(sed -n "s/^User=//p" $unit)
group=$(sed -n "s/^Group=//p" $unit)
env_file=$(sed -n "s/^EnvironmentFile=-\{0,1\}//p" $unit)
ARGS=""
. "$env_file"
read -ra argv <<<"${exec_start//\$ARGS/$ARGS}"
echo $$ >/tmp/pgwatchdog.pid
exec setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs -- "${argv[@]}"
SCRIPT
chmod 755 /tmp/run-unit'
"${PODMAN[@]}" exec "$container" /tmp/run-unit >"$tmp/daemon.log" 2>&1 &
daemon_exec=$!
metrics() { curl -fsS --max-time 2 "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null; }
target_up() {
  kill -0 "$daemon_exec" 2>/dev/null || die "the daemon exited: $(tail -n 5 "$tmp/daemon.log")"
  metrics | grep -qx 'pgwatchdog_up{target="db"} 1'
}
wait_for 60 'pgwatchdog_up{target="db"} 1' target_up
echo 'pgwatchdog_up{target="db"} 1'
in_root '[[ $(ps -o user= -p "$(cat /tmp/pgwatchdog.pid)") == pgwatchdog ]]'
# ARGS reached the daemon: its log is JSON.
head -n1 "$tmp/daemon.log" | grep -q '^{' || die "the log is not JSON: ARGS did not reach the daemon"

step "The unit's ExecReload="
in_root 'reload=$(sed -n "s/^ExecReload=//p" /lib/systemd/system/pgwatchdog.service)
  MAINPID=$(cat /tmp/pgwatchdog.pid)
  ${reload//\$MAINPID/$MAINPID}'
reloaded() { grep -q 'config reloaded' "$tmp/daemon.log"; }
wait_for 30 "reload in the daemon's log" reloaded
wait_for 30 'pgwatchdog_up{target="db"} 1 after the reload' target_up

step "SIGTERM: exit status 0"
in_root 'kill -TERM "$(cat /tmp/pgwatchdog.pid)"'
exited() { ! kill -0 "$daemon_exec" 2>/dev/null; }
wait_for 20 "exit after SIGTERM" exited
daemon_rc=0
wait "$daemon_exec" || daemon_rc=$?
(( daemon_rc == 0 )) || die "pgwatchdog exited with status $daemon_rc after SIGTERM, not 0"
! grep -F -q "$password" "$tmp/daemon.log" || die "the daemon's log shows the password"
echo "exit status 0, no password in the log"

# --- the -dev package ------------------------------------------------------------------------
step "examples/ built against the installed libpgwatchdog-dev"
in_root "cmake -S /src/examples -B /tmp/examples -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_FLAGS='-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror' >/tmp/cmake.log 2>&1 ||
    { cat /tmp/cmake.log; exit 1; }
  cmake --build /tmp/examples -j2 >>/tmp/cmake.log 2>&1 || { tail -n 40 /tmp/cmake.log; exit 1; }
  [[ \$(pkg-config --modversion pgwatchdog) == $version ]]
  g++ -std=c++20 -Wall -Wextra -Werror -o /tmp/on_its_own_thread \
    /src/examples/watchdog_on_its_own_thread.cpp \$(pkg-config --cflags --libs pgwatchdog)
  ls /tmp/examples/embed_on_host_loop /tmp/on_its_own_thread"
for example in /tmp/examples/embed_on_host_loop /tmp/on_its_own_thread; do
  # Each way this can fail says which, with the example's output (it prints only healthy and
  # down events: a connection that keeps failing to connect prints nothing). The 120 s are a
  # hang guard: under scripts/test-under-load --ci one of these once showed nothing in 30.
  in_root "stdbuf -oL $example '$dsn application_name=pgwd-example' >/tmp/example.log 2>&1 &
    pid=\$!
    # A deadline on the clock, not a count of polls: the one failure seen (a loaded CI run)
    # reported 1200 polls done while ps gave the example an age under a second.
    polls=0; started=\$SECONDS
    while (( SECONDS - started < 120 )); do
      polls=\$((polls + 1))
      grep -q healthy /tmp/example.log && break
      if ! kill -0 \$pid 2>/dev/null; then
        rc=0; wait \$pid || rc=\$?
        echo \"$example exited with status \$rc before it was healthy; its output:\"
        cat /tmp/example.log; exit 1
      fi
      sleep 0.1
    done
    if ! grep -q healthy /tmp/example.log; then
      echo \"$example not healthy after \$((SECONDS - started)) s (\$polls polls); its output:\"
      cat /tmp/example.log
      ps -o pid,stat,etime,time,args -p \$pid || true
      exit 1
    fi
    kill -INT \$pid
    rc=0; wait \$pid || rc=\$?
    (( rc == 0 )) || { echo \"$example exited with status \$rc on SIGINT; its output:\"; cat /tmp/example.log; exit 1; }"
  echo "$example: healthy, exit status 0 on SIGINT"
done

# --- remove and purge --------------------------------------------------------------------------
step "apt-get remove: the conffiles stay"
in_root 'DEBIAN_FRONTEND=noninteractive apt-get -q remove -y pgwatchdog libpgwatchdog-dev libpgwatchdog0.3 >/dev/null
  test -f /etc/pgwatchdog/pgwatchdog.yaml
  test -f /etc/default/pgwatchdog
  ! test -e /usr/bin/pgwatchdog
  [[ $(dpkg-query -W -f="\${db:Status-Abbrev}" pgwatchdog) == "rc " ]]'
step "dpkg --purge: nothing left but the system user"
in_root 'dpkg --purge pgwatchdog libpgwatchdog-dev libpgwatchdog0.3 >/dev/null
  for p in pgwatchdog libpgwatchdog-dev libpgwatchdog0.3; do
    if dpkg-query -W -f="\${db:Status-Abbrev}" $p 2>/dev/null | grep -q .; then echo "$p is still known to dpkg"; exit 1; fi
  done
  left=$(find / -xdev \( -path /proc -o -path /debs -o -path /src -o -path /tmp \) -prune -o \
    \( -name "*pgwatchdog*" -o -name pgwd \) -print)
  [[ -z $left ]] || { echo "left after purge:"; echo "$left"; exit 1; }
  ! dpkg-statoverride --list | grep -q pgwatchdog
  # Debian keeps system users: files they own may remain elsewhere.
  id pgwatchdog >/dev/null
  echo "purged: no file, no statoverride, no systemd state; the user pgwatchdog stays"'

# --- the unit under systemd ----------------------------------------------------------------------
step "The unit under systemd as PID 1: tests/package/systemd.sh"
bash "$root/tests/package/systemd.sh" --debs "$debs" </dev/null
