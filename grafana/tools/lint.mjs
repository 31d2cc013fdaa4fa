#!/usr/bin/env node
// Static checks of grafana/: the dashboard-linter rules that matter, re-implemented (its Go binary
// cannot be had here), the mixtool rules for alert and recording rules, every PromQL expression
// parsed, runbook links resolved, and the provisioning files' shape.
//
// Usage: node grafana/tools/lint.mjs            lint the committed files
//        node grafana/tools/lint.mjs --self-test also prove that each rule catches a broken copy
import { readFileSync } from 'node:fs';
import { analyze, parseLabelValues, RATE_INTERVAL_SENTINEL, substitute } from './promql.mjs';
import { allPanels, allRules, paths, pendingMetrics, readJson, readYaml } from './grafana-files.mjs';

// Grafana unit ids (packages/grafana-data valueFormats categories) that fit this dashboard's data.
const UNITS = new Set(['none', 'short', 'percent', 'percentunit', 'string', 'bool', 'bool_yes_no', 'bool_on_off',
  'ns', 'µs', 'ms', 's', 'm', 'h', 'd', 'dtdurationms', 'dtdurations', 'cps', 'ops', 'reqps', 'rps', 'cpm', 'opm', 'rpm']);
const DATASOURCE_REFS = new Set(['${datasource}', '$datasource']);
const FILTER_VARIABLES = ['job', 'instance', 'target'];
// Metrics without a target label: the watchdog's own, and its Patroni clusters' (labelled
// cluster; their members are targets CLUSTER/MEMBER with the usual series).
const WATCHDOG_WIDE = /^pgwatchdog_(build_info|event_loop_lag_seconds|slow_callbacks_total|shard_info|shard_targets|log_messages_dropped_total|patroni_)/;
const COUNTER_SERIES = /(_total|_bucket|_count|_sum)$/;

function checkExpr(where, expr, problems, { dashboard }) {
  const parsed = analyze(substitute(expr));
  for (const e of parsed.errors) problems.push(`${where}: ${e} in ${JSON.stringify(expr)}`);
  for (const { func, range } of parsed.rateRanges)
    if (dashboard && range !== RATE_INTERVAL_SENTINEL) problems.push(`${where}: ${func}() over [${range}], not [$__rate_interval]`);
  for (const s of parsed.selectors) {
    if (COUNTER_SERIES.test(s.metric) && !s.underRate)
      problems.push(`${where}: counter series ${s.metric} is used outside rate()/irate()/increase()`);
    if (!dashboard) continue;
    for (const v of FILTER_VARIABLES) {
      if (v === 'target' && (WATCHDOG_WIDE.test(s.metric) || s.metric === 'up')) continue;
      if (!s.matchers.some((m) => m.label === v && m.op === '=~' && m.value === `$${v}`))
        problems.push(`${where}: selector ${s.text} lacks ${v}=~"$${v}"`);
    }
  }
  return parsed;
}

export function lintDashboard(d) {
  const problems = [];
  const raw = JSON.stringify(d);
  if ('__inputs' in d || raw.includes('${DS_')) problems.push('dashboard is in the "export for sharing" form (__inputs / ${DS_...}): file provisioning never fills those in');
  if (typeof d.uid !== 'string' || d.uid.length < 8 || d.uid.length > 40 || !/^[a-zA-Z0-9_-]+$/.test(d.uid)) problems.push(`uid ${JSON.stringify(d.uid)} must be fixed, 8-40 characters [a-zA-Z0-9_-]`);
  if (d.schemaVersion < 38 || d.schemaVersion > 39) problems.push(`schemaVersion ${d.schemaVersion}: ship 38 or 39 (older Grafanas cannot read newer, newer migrate these)`);
  if (d.editable !== false) problems.push('editable must be false: changes belong in the file');
  if ('id' in d && d.id !== null) problems.push('a fixed numeric id makes provisioning clash: leave it out');

  const vars = d.templating?.list ?? [];
  const dsVars = vars.filter((v) => v.type === 'datasource');
  if (dsVars.length !== 1 || dsVars[0].name !== 'datasource' || dsVars[0].query !== 'prometheus')
    problems.push('exactly one variable of type datasource, named "datasource", of query "prometheus", is required');
  for (const v of vars) {
    if (v.type !== 'query') continue;
    if (!DATASOURCE_REFS.has(v.datasource?.uid)) problems.push(`variable ${v.name} does not use the datasource variable`);
    if (v.refresh !== 2) problems.push(`variable ${v.name}: refresh must be 2 (on time range change), not ${v.refresh}`);
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    const lv = parseLabelValues(q ?? '');
    if (!lv) problems.push(`variable ${v.name}: query ${JSON.stringify(q)} is not label_values(...)`);
    else if (lv.selector) checkExpr(`variable ${v.name}`, lv.selector, problems, { dashboard: false });
  }
  for (const name of FILTER_VARIABLES) {
    const v = vars.find((x) => x.name === name);
    if (!v) { problems.push(`variable ${name} is missing`); continue; }
    if (v.type !== 'query' || v.multi !== true || v.includeAll !== true || v.allValue !== '.+')
      problems.push(`variable ${name} must be a query variable, multi, with All = ".+"`);
  }

  const ids = new Set();
  for (const { panel: p } of allPanels(d)) {
    if (ids.has(p.id)) problems.push(`panel id ${p.id} is used twice`);
    ids.add(p.id);
    const g = p.gridPos;
    if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) problems.push(`panel "${p.title}": gridPos ${JSON.stringify(g)} is outside the 24-column grid`);
    if (p.type === 'row') continue;
    const where = `panel "${p.title}"`;
    if (!p.title) problems.push(`panel ${p.id} has no title`);
    if (!p.description) problems.push(`${where} has no description`);
    if (!DATASOURCE_REFS.has(p.datasource?.uid)) problems.push(`${where} does not use the datasource variable`);
    const unit = p.type === 'heatmap' ? p.options?.yAxis?.unit : p.fieldConfig?.defaults?.unit;
    if (!UNITS.has(unit)) problems.push(`${where}: unit ${JSON.stringify(unit)} is missing or not a Grafana unit id`);
    if (p.type === 'heatmap' && p.fieldConfig?.defaults?.unit !== unit) problems.push(`${where}: fieldConfig unit and yAxis unit differ`);
    if (!(p.targets?.length > 0)) problems.push(`${where} has no query`);
    for (const t of p.targets ?? []) {
      const tw = `${where} target ${t.refId}`;
      if (!DATASOURCE_REFS.has(t.datasource?.uid)) problems.push(`${tw} does not use the datasource variable`);
      if (typeof t.expr !== 'string' || !t.expr.trim()) { problems.push(`${tw} has no expr`); continue; }
      checkExpr(tw, t.expr, problems, { dashboard: true });
      if (p.type === 'heatmap' && (t.format !== 'heatmap' || t.legendFormat !== '{{le}}')) problems.push(`${tw}: a heatmap query needs format "heatmap" and legend {{le}}`);
    }
    if (p.type === 'heatmap' && p.options?.calculate !== false) problems.push(`${where}: buckets come from Prometheus: options.calculate must be false`);
  }
  return problems;
}

const NAME = /^([A-Z]+[a-z0-9]+)+$/;
const RECORD = /^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/;

export function lintRules(files, runbook) {
  const problems = [];
  const anchors = new Set(
    [...runbook.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')));
  const recorded = new Set();
  for (const [file, doc] of files) {
    for (const g of doc.groups ?? []) {
      if (!g.name || g.name.length > 40) problems.push(`${file}: group name ${JSON.stringify(g.name)} must be 1-40 characters`);
      if ((g.rules ?? []).length > 20) problems.push(`${file}: group ${g.name} has more than 20 rules`);
      for (const r of g.rules ?? []) {
        const where = `${file}: ${r.alert ?? r.record}`;
        checkExpr(where, String(r.expr), problems, { dashboard: false });
        if (r.record) {
          if (!RECORD.test(r.record)) problems.push(`${where}: recording rule names are level:metric:operations`);
          recorded.add(r.record);
          continue;
        }
        if (!NAME.test(r.alert) || r.alert.length > 40 || !r.alert.startsWith('PgWatchdog'))
          problems.push(`${where}: alert names are CamelCase, start with PgWatchdog, at most 40 characters`);
        if (!['critical', 'warning', 'info'].includes(r.labels?.severity)) problems.push(`${where}: severity must be critical, warning or info`);
        const a = r.annotations ?? {};
        if (!a.summary || a.summary.includes('{{') || !/^[A-Z].+\.$/.test(a.summary)) problems.push(`${where}: summary must be a static sentence ending with a period`);
        if (!a.description || !a.description.includes('{{')) problems.push(`${where}: description must be templated`);
        const anchor = /#([a-z0-9_-]+)$/.exec(a.runbook_url ?? '')?.[1];
        if (!anchor || anchor !== r.alert.toLowerCase()) problems.push(`${where}: runbook_url must end in #${r.alert.toLowerCase()}`);
        else if (!anchors.has(anchor)) problems.push(`${where}: the runbook has no section #${anchor}`);
      }
    }
  }
  return { problems, recorded };
}

export function lintProvisioning(datasources, dashboards, dashboard) {
  const problems = [];
  const ds = datasources?.datasources ?? [];
  if (datasources?.apiVersion !== 1 || ds.length !== 1 || ds[0].type !== 'prometheus' || ds[0].access !== 'proxy' || !ds[0].uid || !ds[0].url)
    problems.push('datasource provisioning: apiVersion 1 and one prometheus datasource (access proxy, uid, url)');
  const current = dashboard.templating?.list?.find((v) => v.name === 'datasource')?.current?.value;
  if (ds[0] && current !== ds[0].uid) problems.push(`the datasource variable's default (${current}) is not the provisioned datasource (${ds[0].uid})`);
  const p = dashboards?.providers ?? [];
  if (dashboards?.apiVersion !== 1 || p.length !== 1 || p[0].type !== 'file' || !p[0].options?.path)
    problems.push('dashboard provisioning: apiVersion 1 and one provider of type file with options.path');
  else if (!p[0].options.path.endsWith('/dashboards')) problems.push('dashboard provider path must end in the mounted grafana/dashboards directory');
  return problems;
}

export function lintPending(lines) {
  return lines.filter((l) => !/^pgwatchdog_[a-z0-9_]+$/.test(l)).map((l) => `pending-metrics.txt: ${JSON.stringify(l)} is not a metric family name`);
}

function lintAll(d) {
  const files = [['pgwatchdog-rules.yaml', readYaml(paths.recordingRules)], ['pgwatchdog-alerts.yaml', readYaml(paths.alertRules)]];
  const { problems: ruleProblems } = lintRules(files, readFileSync(paths.runbook, 'utf8'));
  return [
    ...lintDashboard(d),
    ...ruleProblems,
    ...lintProvisioning(readYaml(paths.datasourceProvisioning), readYaml(paths.dashboardProvisioning), d),
    ...lintPending(pendingMetrics()),
  ];
}

// Each breakage must be reported: a lint that passes everything proves nothing.
const MUTATIONS = [
  ['rate over a fixed range', (d) => { d.panels.find((p) => p.title === 'Disconnects by cause').targets[0].expr = 'sum by (cause) (rate(pgwatchdog_disconnects_total{job=~"$job", instance=~"$instance", target=~"$target"}[5m]))'; }, /not \[\$__rate_interval\]/],
  ['a counter without rate', (d) => { d.panels.find((p) => p.title === 'Disconnects by cause').targets[0].expr = 'sum(pgwatchdog_disconnects_total{job=~"$job", instance=~"$instance", target=~"$target"})'; }, /outside rate/],
  ['a syntax error', (d) => { d.panels.find((p) => p.title === 'Targets watched').targets[0].expr = 'count(pgwatchdog_up{job=~"$job"}'; }, /syntax error/],
  ['a missing unit', (d) => { delete d.panels.find((p) => p.type === 'stat').fieldConfig.defaults.unit; }, /unit undefined/],
  ['a made-up unit', (d) => { d.panels.find((p) => p.type === 'heatmap').options.yAxis.unit = 'seconds'; }, /not a Grafana unit/],
  ['a hard-wired datasource', (d) => { d.panels.find((p) => p.type === 'timeseries').datasource = { type: 'prometheus', uid: 'abc' }; }, /datasource variable/],
  ['a second datasource variable', (d) => { d.templating.list.push({ ...d.templating.list[0], name: 'ds2' }); }, /exactly one variable of type datasource/],
  ['refresh on load only', (d) => { d.templating.list.find((v) => v.name === 'target').refresh = 1; }, /refresh must be 2/],
  ['the export form', (d) => { d.__inputs = [{ name: 'DS_PROMETHEUS' }]; }, /export for sharing/],
  ['no target filter', (d) => { d.panels.find((p) => p.title === 'Targets watched').targets[0].expr = 'count(pgwatchdog_up{job=~"$job", instance=~"$instance"})'; }, /lacks target=~/],
];

function main() {
  const dashboard = readJson(paths.dashboard);
  const problems = lintAll(dashboard);
  for (const p of problems) console.error(`lint: ${p}`);
  if (problems.length) { console.error(`lint: ${problems.length} problem(s)`); process.exit(1); }
  const panels = allPanels(dashboard).filter(({ panel }) => panel.type !== 'row');
  const queries = panels.flatMap(({ panel }) => panel.targets ?? []);
  console.log(`lint: dashboard (${panels.length} panels, ${queries.length} queries), rules, provisioning, runbook links: ok`);
  if (!process.argv.includes('--self-test')) return;
  let missed = 0;
  for (const [what, mutate, expected] of MUTATIONS) {
    const copy = structuredClone(dashboard);
    mutate(copy);
    const found = lintDashboard(copy);
    if (!found.some((p) => expected.test(p))) { console.error(`lint self-test: ${what} was not reported (got ${JSON.stringify(found)})`); missed++; }
  }
  const rules = readYaml(paths.alertRules);
  const broken = structuredClone(rules);
  const r0 = broken.groups[0].rules[0];
  r0.alert = 'pgwatchdog_target_down';
  r0.annotations.summary = 'Target {{ $labels.target }} down';
  delete r0.labels.severity;
  const ruleFound = lintRules([['copy', broken]], readFileSync(paths.runbook, 'utf8')).problems;
  for (const re of [/CamelCase/, /severity/, /summary/, /runbook_url/])
    if (!ruleFound.some((p) => re.test(p))) { console.error(`lint self-test: a broken alert rule was not reported for ${re}`); missed++; }
  if (!lintRules([['copy', rules]], '# no sections\n').problems.some((p) => /runbook has no section/.test(p))) { console.error('lint self-test: a missing runbook section was not reported'); missed++; }
  if (!lintPending(['pgwatchdog_x_total', 'oops metric']).length) { console.error('lint self-test: a bad pending-metrics line was not reported'); missed++; }
  if (missed) process.exit(1);
  console.log(`lint self-test: all ${MUTATIONS.length + 6} deliberate breakages reported`);
}

main();
