#!/usr/bin/env bash
# Container test: builds the image (scripts/build-image) and runs it as a user would run it in
# production, against a throwaway PostgreSQL 15 cluster on the host.
#
# Usage: tests/container/run.sh [--image NAME] [--debs DIR]
#
#   --image NAME  the image's name (default localhost/pgwatchdog:VERSION)
#   --debs DIR    make the image from the daemon's package in DIR (scripts/build-image --from-deb,
#                 as CI does after its package stage) instead of compiling the daemon
#
# Checks, each with a deadline: the image's binary finds every library it links (ldd), its
# labels carry the project's version and it runs as 65534; the image's default config loads and
# binds 0.0.0.0:10432 (in a network namespace of its own); the container, with a read-only root
# filesystem, --user 65534 and a config mounted over the default one, serves
# pgwatchdog_up{target="db"} 1 on /metrics; a pg_terminate_backend of its connections is counted
# in pgwatchdog_disconnects_total; SIGTERM (podman stop) ends it with status 0. Prints the image
# size. Container, cluster and temp files are removed on every exit path.
set -euo pipefail

test_name="container test"
test_options="--image --debs"
# shellcheck source=tests/support/operator-test.sh
source "$(dirname "${BASH_SOURCE[0]}")/../support/operator-test.sh" "$@"
[[ -n $image ]] || image=localhost/pgwatchdog:$version
podman_run() { "${PODMAN[@]}" run "${PODMAN_ULIMITS[@]}" "$@"; }
container_stop_seconds=5
on_failure() {
  if [[ -n $container ]]; then
    echo "---- container log" >&2
    "${PODMAN[@]}" logs "$container" 2>&1 | tail -n 40 >&2
  fi
  if [[ -n $tmp && -f $tmp/server.log ]]; then
    echo "---- last lines of the server log" >&2
    tail -n 20 "$tmp/server.log" >&2
  fi
}

# wait_for's guard: a container that stopped will not answer.
wait_for_guard() {
  if [[ -n $container ]] && [[ $("${PODMAN[@]}" inspect -f '{{.State.Running}}' "$container") != true ]]; then
    die "the container stopped while waiting for $1"
  fi
}

# --- the image ----------------------------------------------------------------------
build_start=$SECONDS
from_deb=()
if [[ -n $debs ]]; then from_deb=(--from-deb "$debs"); fi
bash "$root/scripts/build-image" --tag "$image" "${from_deb[@]}" </dev/null
step "Image built in $((SECONDS - build_start)) s"

step "ldd in the image: every library the binary links is there"
ldd_out=$(podman_run --rm --network none --entrypoint ldd "$image" /usr/bin/pgwatchdog)
if grep -q 'not found' <<<"$ldd_out"; then
  echo "$ldd_out" >&2
  die "the image lacks libraries pgwatchdog links"
fi
echo "$(grep -c '=>' <<<"$ldd_out") libraries, none missing"

step "Labels, user, version"
label_version=$("${PODMAN[@]}" image inspect -f '{{index .Labels "org.opencontainers.image.version"}}' "$image")
[[ $label_version == "$version" ]] || die "org.opencontainers.image.version is '$label_version', not $version"
# The revision too: a stale one would mean a cached layer kept an earlier build's labels.
label_revision=$("${PODMAN[@]}" image inspect -f '{{index .Labels "org.opencontainers.image.revision"}}' "$image")
head=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
[[ $label_revision == "$head" ]] || die "org.opencontainers.image.revision is '$label_revision', not $head"
image_user=$("${PODMAN[@]}" image inspect -f '{{.Config.User}}' "$image")
[[ $image_user == 65534:65534 ]] || die "the image's USER is '$image_user', not 65534:65534"
daemon_version=$(podman_run --rm --network none --read-only "$image" --version)
[[ $daemon_version == "pgwatchdog $version" ]] || die "--version says '$daemon_version', not 'pgwatchdog $version'"
echo "version $version, user $image_user"

step "The default config: listens on 0.0.0.0:10432 (checked in a network namespace of its own)"
effective=$(podman_run --rm --network none --read-only "$image" \
  --config /etc/pgwatchdog/pgwatchdog.yaml --target probe=host=db.invalid --check-config)
grep -qx 'listen: "0.0.0.0:10432"' <<<"$effective" || { echo "$effective" >&2; die "the default config does not listen on 0.0.0.0:10432"; }

# --- a cluster on the host and the container watching it ---------------------------------
tmp=$(mktemp -d /tmp/pgwd-container.XXXXXX)
step "Throwaway PostgreSQL 15 cluster in $tmp"
cluster_start "$tmp"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
cluster_psql >/dev/null <<<"CREATE ROLE watchdog LOGIN PASSWORD '$password';"

# A loopback port that nothing accepts on; the container shares the host's network.
metrics_port=$(free_loopback_port) || metrics_port=""
[[ -n $metrics_port ]] || die "found no free loopback port"
metrics_url=http://127.0.0.1:$metrics_port/metrics

mkdir "$tmp/etc"
cat >"$tmp/etc/pgwatchdog.yaml" <<CONFIG
listen: "127.0.0.1:$metrics_port"
defaults:
  backoff_max: 1s
targets:
  - name: db
    dsn: "host=127.0.0.1 port=$CLUSTER_PORT dbname=postgres user=watchdog password=$password application_name=pgwd-container"
    connections: 2
CONFIG
# Readable by the container's user alone, as a mounted Secret would be.
chown 65534:65534 "$tmp/etc/pgwatchdog.yaml"
chmod 600 "$tmp/etc/pgwatchdog.yaml"

container=pgwd-container-test-$$
step "Running $image as $container (read-only root, user 65534, host network)"
podman_run -d --name "$container" --network host --read-only --user 65534:65534 \
  --volume "$tmp/etc/pgwatchdog.yaml:/etc/pgwatchdog/pgwatchdog.yaml:ro" "$image" >/dev/null

metrics() { curl -fsS --max-time 2 "$metrics_url" 2>/dev/null; }
target_up() { metrics | grep -qx 'pgwatchdog_up{target="db"} 1'; }
disconnects() { metrics | awk '/^pgwatchdog_disconnects_total\{.*target="db"/ { s += $NF } END { print s + 0 }'; }
wait_for 60 'pgwatchdog_up{target="db"} 1 on /metrics' target_up
echo 'pgwatchdog_up{target="db"} 1'

before=$(disconnects)
terminated=$(cluster_psql -At -c \
  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pgwd-container'")
(( terminated == 2 )) || die "expected to terminate the 2 watched backends, terminated $terminated"
counted() { (( $(disconnects) >= before + terminated )); }
wait_for 30 "$terminated more disconnects in pgwatchdog_disconnects_total" counted
metrics | grep -E '^pgwatchdog_disconnects_total\{.*target="db"' | grep -v ' 0$' || true
wait_for 30 'pgwatchdog_up{target="db"} 1 again after the reconnect' target_up

step "SIGTERM (podman stop): exit status 0"
"${PODMAN[@]}" stop -t 20 "$container" >/dev/null
exit_code=$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$container")
[[ $exit_code == 0 ]] || die "pgwatchdog exited with status $exit_code after SIGTERM, not 0"
if "${PODMAN[@]}" logs "$container" 2>&1 | grep -F -q "$password"; then
  die "the container's log shows the password"
fi
echo "exit status 0"

size=$("${PODMAN[@]}" image inspect -f '{{.Size}}' "$image")
step "Image $image: $((size / 1024 / 1024)) MiB ($size bytes)"
