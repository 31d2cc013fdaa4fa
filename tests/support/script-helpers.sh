# shellcheck shell=bash
# Helpers shared by the shell tests that run pgwatchdog as an operator would (tests/container/
# run.sh, tests/package/run.sh and systemd.sh, through operator-test.sh, their frame). Source it
# after defining die MESSAGE (prints and exits).

# project_version ROOT: the version in ROOT/CMakeLists.txt's project(), e.g. 0.2.0.
project_version() {
  sed -nE 's/^project\(pgwatchdog VERSION ([0-9][0-9.]*)[ )].*/\1/p' "$1/CMakeLists.txt"
}

# free_loopback_port: prints a TCP port on 127.0.0.1 (20000-29999) that nobody listened on a
# moment ago; fails when 50 tries found none.
free_loopback_port() {
  local attempt candidate
  for (( attempt = 0; attempt < 50; ++attempt )); do
    candidate=$(( 20000 + RANDOM % 10000 ))
    if ! (: <"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then echo "$candidate"; return 0; fi
  done
  return 1
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it succeeds, and dies with
# "no WHAT within SECONDS s" when it has not by then. If the caller defines wait_for_guard WHAT,
# it runs each round, to die early when waiting has become pointless (a container that stopped).
wait_for() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    (( SECONDS < deadline )) || die "no $what within $seconds s"
    if declare -F wait_for_guard >/dev/null; then wait_for_guard "$what"; fi
    sleep 0.2
  done
}
