#!/usr/bin/env bash
# Installs the checks' npm packages, exactly as pinned in grafana/tools/package-lock.json, into
# grafana/tools/node_modules (git-ignored). Skips the install when that lock file is unchanged
# since the last one. Needs node and npm (on Debian: scripts/install-deps installs nodejs).
set -euo pipefail
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "npm-ci: $tool not found; run scripts/install-deps" >&2; exit 1; }
done
stamp=$tools/node_modules/.pgwd-lock.sha256
want=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
echo "npm-ci: installing the pinned packages of $tools/package-lock.json"
# npm ci: exactly the lock file, and an error if package.json and the lock file disagree.
(cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" >"$stamp"
