#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # in_root's quoted scripts expand in the container; cluster_psql reads stdin
# The Debian package's unit under a real systemd: a podman container whose PID 1 is systemd 252
# (Debian 12's), the pgwatchdog package installed into it with apt, the service started, reloaded
# and stopped with systemctl, with the unit's whole hardening in force, against a throwaway
# PostgreSQL 15 cluster on the host (one target over TCP with its password in a password_file,
# one over the cluster's unix socket).
#
# Usage: tests/package/systemd.sh [--debs DIR]
#
#   --debs DIR   use the packages in DIR (default: build them with scripts/build-deb first)
#
# Checks, each with a deadline: `systemctl start` returns with the service active and its STATUS=
# text; both targets up in /metrics; the daemon runs as pgwatchdog with no capability, no new
# privileges and a seccomp filter, in namespaces of its own; `systemctl reload` returns once a
# target added to the file is up, the main process unchanged; systemd receives the WATCHDOG=1
# pings; `systemctl stop` ends it with status 0 (Result=success) and "stopped in" logged; the
# journal shows no password. Needs root (podman runs rootful here) and the Debian mirror (apt).
# The image (the mmdebstrap base of scripts/build-image with systemd added) is kept in podman's
# storage under a name carrying a hash of its recipe; container, cluster and temp files are
# removed on every exit path.
set -euo pipefail

test_name="systemd test"
test_options="--debs"
# shellcheck source=tests/support/operator-test.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/operator-test.sh" "$@"
on_failure() {
  if [[ -n $container ]]; then
    echo "---- systemctl status pgwatchdog, and the journal" >&2
    "${PODMAN[@]}" exec "$container" systemctl --no-pager status pgwatchdog >&2
    "${PODMAN[@]}" exec "$container" journalctl --no-pager -n 60 >&2
  fi
}
tmp=$(mktemp -d /tmp/pgwd-systemd.XXXXXX)
chmod 755 "$tmp"   # the cluster below runs as postgres

# in_root SCRIPT: runs bash -c SCRIPT as root in the container (set -euo pipefail).
in_root() { "${PODMAN[@]}" exec -i "$container" bash -c "set -euo pipefail; $1"; }

# --- the packages and the image --------------------------------------------------------------
if [[ -z $debs ]]; then
  debs=$tmp/debs
  bash "$root/scripts/build-deb" --out "$debs" </dev/null
fi
deb=$(find "$debs" -maxdepth 1 -name "pgwatchdog_${version}_*.deb" -print -quit)
[[ -n $deb ]] || die "no pgwatchdog_${version}_*.deb in $debs"
bash "$root/scripts/build-image" --base-only </dev/null

# The base with systemd as its init; nothing else, so that apt installs the package's own
# dependencies below as on any Debian 12 machine.
recipe="FROM $base_image
RUN apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y \\
      --no-install-recommends systemd && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGRTMIN+3
CMD [\"/lib/systemd/systemd\"]"
image=localhost/pgwatchdog-systemd-test:$(sha256sum <<<"$recipe" | cut -c1-12)
if ! "${PODMAN[@]}" image exists "$image"; then
  step "Building $image (the base with systemd; once per recipe)"
  "${PODMAN[@]}" build --pull=never --format oci "${PODMAN_ULIMITS[@]}" --tag "$image" \
    --file - "$tmp" <<<"$recipe"
fi

step "Throwaway PostgreSQL 15 cluster in $tmp/cluster"
mkdir "$tmp/cluster"
cluster_start "$tmp/cluster"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
cluster_psql >/dev/null <<<"CREATE ROLE watchdog LOGIN PASSWORD '$password';"
metrics_port=$(free_loopback_port) || metrics_port=""
[[ -n $metrics_port ]] || die "found no free loopback port"

# --- systemd as PID 1 --------------------------------------------------------------------------
container=pgwd-systemd-test-$$
step "systemd as PID 1 in $container ($image)"
# --systemd=always: podman mounts what systemd needs (tmpfs on /run, /tmp; the cgroup tree) and
# stops the container with SIGRTMIN+3. --privileged: the capabilities systemd has on a host,
# which it needs to apply the unit's sandbox. Without CAP_SYS_ADMIN (podman's default set)
# systemd 252 cannot unshare a mount namespace and, taking that for a container, starts the
# service without one ("Failed to set up namespace, assuming containerized execution and
# ignoring"): ProtectSystem=, PrivateTmp= and the rest would silently not apply, and this test
# would prove nothing about them. With CAP_SYS_ADMIN alone, PrivateUsers= with
# ProtectProc=invisible fails (status 217/USER, "Failed to set up user namespacing: No such
# file or directory"). The host's network: the daemon reaches the cluster on 127.0.0.1 and the
# test scrapes the daemon there. The cluster's socket directory appears where Debian's
# PostgreSQL keeps its sockets.
"${PODMAN[@]}" run -d --name "$container" --systemd=always --privileged --network host \
  "${PODMAN_ULIMITS[@]}" \
  --volume "$debs:/debs:ro" --volume "$tmp/cluster:/run/postgresql:ro" "$image" >/dev/null
wait_for_guard() {
  [[ $("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$container" 2>/dev/null) == true ]] ||
    die "the container stopped while waiting for $1: $("${PODMAN[@]}" logs "$container" 2>&1 | tail -n 20)"
}
booted() {
  local state
  state=$("${PODMAN[@]}" exec "$container" systemctl is-system-running 2>/dev/null) || true
  [[ $state == running || $state == degraded ]]
}
wait_for 90 "systemd up in the container" booted
in_root 'echo "systemd $(systemctl --version | head -n1 | cut -d" " -f2) is PID 1: $(systemctl is-system-running)"
  systemctl --no-pager --failed --plain --no-legend'

step "apt-get install ${deb##*/}"
install_start=$SECONDS
in_root "export DEBIAN_FRONTEND=noninteractive
  for attempt in 1 2 3; do apt-get -q update && break; sleep 5; done
  apt-get -q install -y --no-install-recommends /debs/${deb##*/} >/tmp/apt.log 2>&1 ||
    { tail -n 30 /tmp/apt.log; exit 1; }
  [[ \$(systemctl is-enabled pgwatchdog) == disabled ]]"
step "Installed in $((SECONDS - install_start)) s, not enabled or started"

# --- start ------------------------------------------------------------------------------------
step "systemctl start pgwatchdog (targets: tcp, with a password_file; socket, over /run/postgresql)"
in_root "install -d -m 0750 -o root -g pgwatchdog /etc/pgwatchdog/secrets
  printf '%s\n' '$password' >/etc/pgwatchdog/secrets/tcp
  chown root:pgwatchdog /etc/pgwatchdog/secrets/tcp
  chmod 0640 /etc/pgwatchdog/secrets/tcp
  cat >/etc/pgwatchdog/pgwatchdog.yaml <<'CONFIG'
listen: \"127.0.0.1:$metrics_port\"
defaults:
  backoff_max: 1s
targets:
  - name: tcp
    dsn: \"host=127.0.0.1 port=$CLUSTER_PORT dbname=postgres user=watchdog application_name=pgwd-systemd\"
    password_file: /etc/pgwatchdog/secrets/tcp
  - name: socket
    dsn: \"host=/run/postgresql port=$CLUSTER_PORT dbname=postgres user=watchdog application_name=pgwd-systemd\"
CONFIG
  timeout 60 systemctl start pgwatchdog"
show() { in_root "systemctl show --value -p $1 pgwatchdog"; }
[[ $(show ActiveState) == active ]] || die "not active after systemctl start: $(show ActiveState)"
# systemd stamps the watchdog when the service starts; a ping moves the stamp on (below).
started_stamp=$(show WatchdogTimestampMonotonic)
metrics() { curl -fsS --max-time 2 "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null; }
up() { local m; m=$(metrics) && for t in "$@"; do grep -qx "pgwatchdog_up{target=\"$t\"} 1" <<<"$m" || return 1; done; }
wait_for 60 "both targets up" up tcp socket
# STATUS= is sent within a second of a change.
status_is() { [[ $(show StatusText) == "$1" ]]; }
wait_for 10 'STATUS "2/2 targets up"' status_is "2/2 targets up"
in_root 'systemctl --no-pager status pgwatchdog | tee /tmp/status
  grep -q "Active: active (running)" /tmp/status
  grep -q "Status: \"2/2 targets up\"" /tmp/status'

step "The hardening, as the kernel sees the daemon"
in_root 'pid=$(systemctl show --value -p MainPID pgwatchdog)
  [[ $(ps -o user= -p "$pid") == pgwatchdog ]]
  grep -E "^(NoNewPrivs|Seccomp|CapEff|CapBnd):" /proc/$pid/status | tee /tmp/proc-status
  grep -qx "NoNewPrivs:[[:space:]]*1" /tmp/proc-status
  grep -qx "Seccomp:[[:space:]]*2" /tmp/proc-status
  grep -qx "CapEff:[[:space:]]*0000000000000000" /tmp/proc-status
  grep -qx "CapBnd:[[:space:]]*0000000000000000" /tmp/proc-status
  # Namespaces of its own: mounts (ProtectSystem=, PrivateTmp=, ...), users, IPC; its root
  # read-only (ProtectSystem=strict) and a /tmp of its own (PrivateTmp=).
  for ns in mnt user ipc; do
    [[ $(readlink /proc/$pid/ns/$ns) != $(readlink /proc/1/ns/$ns) ]] || { echo "shares $ns with PID 1"; exit 1; }
  done
  [[ $(awk "\$5 == \"/\" { print \$6 }" /proc/$pid/mountinfo) == ro,* ]] || { echo "its / is not read-only"; exit 1; }
  [[ $(awk "\$5 == \"/tmp\" { print \$4 }" /proc/$pid/mountinfo) != "$(awk "\$5 == \"/tmp\" { print \$4 }" /proc/1/mountinfo)" ]] ||
    { echo "its /tmp is the system one"; exit 1; }
  [[ $(grep "^Max open files" /proc/$pid/limits | tr -s " " | cut -d" " -f4) == 16384 ]]
  echo "user pgwatchdog, no capability, no new privileges, seccomp, own mnt/user/ipc namespaces, / read-only, own /tmp, 16384 descriptors"
  systemd-analyze security --no-pager pgwatchdog 2>&1 | tail -n 1 || true'

# --- reload -----------------------------------------------------------------------------------
step "systemctl reload pgwatchdog with a third target added to the file"
main_pid=$(show MainPID)
in_root "cat >>/etc/pgwatchdog/pgwatchdog.yaml <<'CONFIG'
  - name: added
    dsn: \"host=/run/postgresql port=$CLUSTER_PORT dbname=postgres user=watchdog\"
CONFIG
  timeout 60 systemctl reload pgwatchdog"
[[ $(show ActiveState) == active ]] || die "not active after the reload"
[[ $(show MainPID) == "$main_pid" ]] || die "the main process changed on reload"
wait_for 60 "the added target up" up tcp socket added
wait_for 10 'STATUS "3/3 targets up"' status_is "3/3 targets up"
in_root 'journalctl --no-pager -u pgwatchdog | grep -q "config reloaded: 1 added"'
echo "reloaded in place (pid $main_pid): 3/3 targets up"

step "The watchdog pings reach systemd (WatchdogSec=30s: one every 15 s)"
pinged() { [[ $(show WatchdogTimestampMonotonic) != "$started_stamp" ]]; }
wait_for 40 "a WATCHDOG=1 ping" pinged
echo "a ping $(( ($(show WatchdogTimestampMonotonic) - started_stamp) / 1000 )) ms after the start"

# --- stop -------------------------------------------------------------------------------------
step "systemctl stop pgwatchdog"
in_root 'timeout 60 systemctl stop pgwatchdog
  [[ $(systemctl show --value -p ActiveState pgwatchdog) == inactive ]]
  [[ $(systemctl show --value -p Result pgwatchdog) == success ]]
  [[ $(systemctl show --value -p ExecMainStatus pgwatchdog) == 0 ]]
  journalctl --no-pager -u pgwatchdog | grep -q "stopped in"'
echo "inactive, Result=success, exit status 0"
in_root "! journalctl --no-pager -u pgwatchdog | grep -F -q '$password'" ||
  die "the journal shows the password"
echo "no password in the journal"
