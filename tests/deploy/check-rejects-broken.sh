#!/usr/bin/env bash
# deploy/kubernetes/check must fail on a broken overlay (broken-overlay/) and name every mistake
# in it; a check that passes it would prove nothing about the real manifests.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rc=0
out=$("$here/../../deploy/kubernetes/check" "$here/broken-overlay" 2>&1) || rc=$?
echo "$out"
if (( rc != 1 )); then echo "FAIL: check exited $rc on the broken overlay, want 1" >&2; exit 1; fi
for expected in "--total-shards 2 differs from replicas 3" "livenessProbe path '/metrics'" \
                "container.securityContext.runAsUser is 0" "capabilities.drop is None"; do
  grep -qF -- "$expected" <<<"$out" || { echo "FAIL: check did not report: $expected" >&2; exit 1; }
done
echo "check rejects the broken overlay, naming all 4 mistakes"
