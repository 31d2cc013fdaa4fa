// Where the files of grafana/ are, and how to read them: shared by the checks.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const grafanaDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const paths = {
  dashboard: join(grafanaDir, 'dashboards', 'pgwatchdog-overview.json'),
  recordingRules: join(grafanaDir, 'prometheus', 'pgwatchdog-rules.yaml'),
  alertRules: join(grafanaDir, 'prometheus', 'pgwatchdog-alerts.yaml'),
  runbook: join(grafanaDir, 'runbook.md'),
  pendingMetrics: join(grafanaDir, 'tests', 'pending-metrics.txt'),
  datasourceProvisioning: join(grafanaDir, 'provisioning', 'datasources', 'pgwatchdog-prometheus.yaml'),
  dashboardProvisioning: join(grafanaDir, 'provisioning', 'dashboards', 'pgwatchdog.yaml'),
};

export const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
export const readYaml = (path) => parse(readFileSync(path, 'utf8'));

/** Metric families the dashboard and rules may name before the daemon exports them. */
export function pendingMetrics() {
  return readFileSync(paths.pendingMetrics, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

/** Every panel, rows' nested panels included, with whether it sits in a collapsed row. */
export function allPanels(dashboard) {
  const out = [];
  for (const p of dashboard.panels ?? []) {
    out.push({ panel: p, collapsed: false });
    if (p.type === 'row') for (const inner of p.panels ?? []) out.push({ panel: inner, collapsed: p.collapsed === true });
  }
  return out;
}

/** Every PromQL expression of the dashboard: panel targets and label_values variable queries. */
export function dashboardQueries(dashboard) {
  const out = [];
  for (const { panel, collapsed } of allPanels(dashboard))
    for (const t of panel.targets ?? []) out.push({ where: `panel "${panel.title}" target ${t.refId}`, panel, target: t, expr: t.expr, collapsed });
  return out;
}

/** Every rule of both rule files: {file, group, rule}. */
export function allRules() {
  const out = [];
  for (const [file, path] of [['pgwatchdog-rules.yaml', paths.recordingRules], ['pgwatchdog-alerts.yaml', paths.alertRules]])
    for (const group of readYaml(path).groups ?? []) for (const rule of group.rules ?? []) out.push({ file, group, rule });
  return out;
}
