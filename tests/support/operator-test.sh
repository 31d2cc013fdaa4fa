# shellcheck shell=bash disable=SC2034,SC2154  # test_name and test_options come from the test; what is set here is for it
# The frame of the shell tests that run pgwatchdog as an operator would (tests/container/run.sh,
# tests/package/run.sh, tests/package/systemd.sh): their options, the helpers they use, and a
# cleanup that removes their container, cluster and temp directory on every exit path and ends
# with one line saying how the test went.
#
# A test sets, after `set -euo pipefail`:
#   test_name      its name in every message ("package test")
#   test_options   the options it takes, of: --debs (DIR: packages built before; sets debs to
#                  its absolute path, else ""), --image (NAME: sets image, else "")
# then sources this file with its arguments:
#   source "$(dirname "${BASH_SOURCE[0]}")/../support/operator-test.sh" "$@"
# and gets: root (the tree), die MESSAGE, step MESSAGE, version (the project's), base_image,
# tmp and container (empty until the test sets them; removed at exit), PODMAN
# (scripts/podman-compat.sh), the throwaway cluster (tests/support/throwaway-cluster.sh) and
# script-helpers.sh. A test may define on_failure, which runs on a failed exit before anything is
# removed (to print the container's or the server's log), and may set container_stop_seconds
# (default 0: the container is killed at once).
# -h/--help prints the test's leading comment.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { echo "$test_name: $*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

debs=""
image=""
while (( $# )); do
  if [[ $1 != -h && $1 != --help && " $test_options " != *" $1 "* ]]; then
    die "unknown argument: $1 (see --help)"
  fi
  case "$1" in
    --debs) (( $# >= 2 )) || die "--debs needs a directory"; debs=$(cd "$2" && pwd); shift 2 ;;
    --image) (( $# >= 2 )) || die "--image needs a name"; image=$2; shift 2 ;;
    -h|--help)
      # The comment after the #! line (and any shellcheck directive), up to the code.
      awk 'NR == 1 || /^# shellcheck/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
      exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# shellcheck source=tests/support/script-helpers.sh
source "$root/tests/support/script-helpers.sh"
version=$(project_version "$root")
base_image=docker.io/library/debian:bookworm-slim
# shellcheck source=scripts/podman-compat.sh
source "$root/scripts/podman-compat.sh"
# shellcheck source=tests/support/throwaway-cluster.sh
source "$root/tests/support/throwaway-cluster.sh"

tmp=""
container=""
container_stop_seconds=0
operator_test_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if (( rc != 0 )) && declare -F on_failure >/dev/null; then on_failure; fi
  if [[ -n $container ]]; then
    "${PODMAN[@]}" rm -f -t "$container_stop_seconds" "$container" >/dev/null 2>&1
  fi
  cluster_stop
  [[ -n $tmp ]] && rm -rf -- "$tmp"
  if (( rc == 0 )); then echo "$test_name: passed in ${SECONDS}s"
  else echo "$test_name: FAILED (exit $rc) after ${SECONDS}s" >&2; fi
  exit "$rc"
}
trap operator_test_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
