#!/usr/bin/env bash
# The checks of grafana/ that need no running server (seconds): alert rules up to date with the
# thresholds, promtool check + unit tests of the rules, the dashboard lint (with its self-test),
# and the dashboard type check against @grafana/schema. Run by ctest (label `grafana`).
set -euo pipefail
grafana=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
step() { printf '==> %s\n' "$*"; }
command -v promtool >/dev/null 2>&1 || { echo "static-checks: promtool not found; run scripts/install-deps" >&2; exit 1; }

bash "$grafana/tools/npm-ci.sh"
step "alert rules rendered from thresholds.yaml"
node "$grafana/tools/render-alerts.mjs" --check
step "promtool check rules"
promtool check rules --lint=all --lint-fatal "$grafana/prometheus/pgwatchdog-rules.yaml" "$grafana/prometheus/pgwatchdog-alerts.yaml"
step "promtool test rules"
promtool test rules "$grafana/tests/alerts-test.yaml" "$grafana/tests/rules-test.yaml"
step "dashboard, rules and provisioning lint"
node "$grafana/tools/lint.mjs" --self-test
step "dashboard type check against @grafana/schema"
node "$grafana/tools/schema-check.mjs"
echo "static-checks: all passed"
