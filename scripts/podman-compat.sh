# Sourced by scripts/build-image and tests/container/run.sh: how podman is called so that it
# works inside restricted sandboxes (such as this project's CI machines) as well as on a normal
# host. Sets:
#   PODMAN          the podman command: runc as the OCI runtime
#   PODMAN_ULIMITS  --ulimit options for `podman build` and `podman run`
#
# Why runc: Debian 12's crun refuses hosts with a hybrid cgroup layout whose cgroup2 mount has
# controllers ("cgroups in hybrid mode not supported"); runc runs there and everywhere else.
# Why explicit limits: rootful podman asks for RLIMIT_NOFILE 1048576 and a large RLIMIT_NPROC
# for every container, which fails ("setrlimit ... operation not permitted") where the caller's
# hard limits are lower and cannot be raised. The caller's own hard limits always work; podman
# caps its own RLIMIT_NPROC at kernel.pid_max, so the container's is capped there too.
# shellcheck shell=bash

PODMAN=(podman --runtime runc)
if (( EUID != 0 )); then PODMAN=(sudo -n "${PODMAN[@]}"); fi

podman_hard_limit() {
  local value
  value=$(ulimit -H "$1")
  [[ $value == unlimited ]] && value=1048576
  echo "$value"
}
pgwd_nofile=$(podman_hard_limit -n)
pgwd_nproc=$(podman_hard_limit -u)
pgwd_pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo "$pgwd_nproc")
(( pgwd_nproc <= pgwd_pid_max )) || pgwd_nproc=$pgwd_pid_max
# shellcheck disable=SC2034  # used by the scripts that source this file
PODMAN_ULIMITS=(--ulimit "nofile=$pgwd_nofile:$pgwd_nofile" --ulimit "nproc=$pgwd_nproc:$pgwd_nproc")
unset pgwd_nofile pgwd_nproc pgwd_pid_max
