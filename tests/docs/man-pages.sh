#!/usr/bin/env bash
# The man pages scripts/build-man makes from docs/daemon.md and docs/configuration.md: groff
# formats them without a warning (-ww: all warnings), man(1) renders them at 80 columns without
# one, and lexgrog finds their NAME line (what mandb indexes and lintian checks).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/pgwd-man.XXXXXX")
trap 'rm -rf "$out"' EXIT

"$root/scripts/build-man" "$out"

failed=0
for page in "$out/pgwatchdog.1" "$out/pgwatchdog.yaml.5"; do
  name=$(basename "$page")
  warnings=$(groff -t -man -ww -z "$page" 2>&1 || echo "groff failed")
  if [[ -n $warnings ]]; then
    printf 'man-pages: %s: groff -t -man -ww -z:\n%s\n' "$name" "$warnings" >&2
    failed=1
  fi
  rendered=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 >/dev/null || echo "man -l failed")
  if [[ -n $rendered ]]; then
    printf 'man-pages: %s: man --warnings -l:\n%s\n' "$name" "$rendered" >&2
    failed=1
  fi
  if ! lexgrog "$page" >/dev/null; then
    echo "man-pages: $name: lexgrog finds no NAME section" >&2
    failed=1
  fi
  # Every section of the source page made it into the man page.
  lines=$(MANWIDTH=80 LC_ALL=C.UTF-8 man -l "$page" 2>/dev/null | wc -l)
  if (( lines < 50 )); then
    echo "man-pages: $name renders to only $lines lines" >&2
    failed=1
  fi
done
(( failed == 0 )) && echo "man-pages: pgwatchdog.1 and pgwatchdog.yaml.5 render without warnings"
exit "$failed"
