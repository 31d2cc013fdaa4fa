#!/usr/bin/env node
// The Prometheus side of grafana/tests/e2e.sh: waits for what the faults must cause, and checks
// every dashboard and rule expression against a real Prometheus that scrapes a real pgwatchdog.
//
// Usage (environment: PROM_URL, DAEMON_METRICS_URL, E2E_START = epoch seconds of the start):
//   e2e-check.mjs wait-series EXPR [SECONDS]       until the instant query returns a sample
//   e2e-check.mjs wait-alert NAME TARGET [SECONDS] until alert NAME{target=TARGET} is pending or firing
//   e2e-check.mjs no-alert NAME TARGET             fails if alert NAME{target=TARGET} is pending or firing
//   e2e-check.mjs evaluate                         every expression, and the metric cross-check
//   ("-" as TARGET means an alert without a target label)
import { analyze, parseLabelValues, substitute } from './promql.mjs';
import { allRules, dashboardQueries, paths, pendingMetrics, readJson } from './grafana-files.mjs';

const PROM = process.env.PROM_URL;
const METRICS = process.env.DAEMON_METRICS_URL;
const START = Number(process.env.E2E_START);
// Grafana's $__rate_interval = max(4 x scrape interval, step + scrape interval); scrapes are 1 s here.
const STEP = 1;
const RATE_INTERVAL = '4s';
const PROMETHEUS_LABELS = new Set(['job', 'instance']);

function fail(message) {
  console.error(`e2e-check: FAIL: ${message}`);
  process.exit(1);
}

async function api(path, params = {}) {
  // POST for the query endpoints (long expressions); GET with a query string for the others
  // (/api/v1/alerts, /api/v1/label/.../values take no POST in Prometheus 2.42).
  const post = path === '/api/v1/query' || path === '/api/v1/query_range';
  const query = new URLSearchParams(params);
  const url = `${PROM}${path}${!post && Object.keys(params).length ? `?${query}` : ''}`;
  const response = await fetch(url, {
    method: post ? 'POST' : 'GET',
    body: post ? query : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${path}: HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
  return body.data;
}
const instant = (query) => api('/api/v1/query', { query });
const range = (query) => {
  const end = Date.now() / 1000;
  return api('/api/v1/query_range', { query, start: String(START), end: String(end), step: String(STEP) });
};

async function until(what, seconds, check) {
  const deadline = Date.now() + seconds * 1000;
  let last;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) fail(`${what}: not within ${seconds} s${last ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, 250)); // polling an HTTP API; the deadline bounds it
  }
}

async function activeAlerts(name, target) {
  const { alerts } = await api('/api/v1/alerts');
  return alerts.filter((a) => a.labels.alertname === name && (target === '-' ? !('target' in a.labels) : a.labels.target === target) &&
    (a.state === 'pending' || a.state === 'firing'));
}

// ---- the daemon's /metrics: families, their types and label names
async function daemonFamilies() {
  const text = await (await fetch(METRICS, { signal: AbortSignal.timeout(5000) })).text();
  const families = new Map(); // name -> {type, labels:Set}
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) { families.set(t[1], { type: t[2], labels: new Set() }); continue; }
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!s) continue;
    let family = families.get(s[1]);
    if (!family) for (const suffix of ['_bucket', '_sum', '_count']) if (s[1].endsWith(suffix)) family = families.get(s[1].slice(0, -suffix.length));
    if (!family) continue;
    for (const m of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) family.labels.add(m[1]);
  }
  return families;
}

/** Resolves a metric name to the daemon families behind it (recording rules included). */
function resolver(families, recording) {
  const memo = new Map();
  const resolve = (metric) => {
    if (memo.has(metric)) return memo.get(metric);
    memo.set(metric, { families: [], labels: new Set(), pending: false, unknown: [] });
    const out = { families: [], labels: new Set(), pending: false, unknown: [] };
    const family = families.get(metric) ??
      (['_bucket', '_sum', '_count'].map((s) => metric.endsWith(s) && families.get(metric.slice(0, -s.length))).find((f) => f && f.type === 'histogram'));
    if (family) {
      const name = families.has(metric) ? metric : metric.replace(/_(bucket|sum|count)$/, '');
      out.families.push(name);
      for (const l of family.labels) out.labels.add(l);
    } else if (recording.has(metric)) {
      const parsed = analyze(recording.get(metric));
      const aggregated = new Set();
      const m = /sum without \(([^)]*)\)/.exec(recording.get(metric));
      if (m) for (const l of m[1].split(',')) aggregated.add(l.trim());
      for (const s of parsed.selectors) {
        const inner = resolve(s.metric);
        out.families.push(...inner.families);
        out.unknown.push(...inner.unknown);
        out.pending ||= inner.pending;
        for (const l of inner.labels) if (!aggregated.has(l)) out.labels.add(l);
      }
    } else if (pendingMetrics().includes(metric)) {
      out.pending = true;
    } else if (metric === 'up') {
      // Prometheus's own per-target series.
    } else {
      out.unknown.push(metric);
    }
    memo.set(metric, out);
    return out;
  };
  return resolve;
}

function seriesHaveData(result) {
  if (result.resultType === 'matrix') return result.result.some((s) => s.values.some(([, v]) => Number.isFinite(Number(v))));
  if (result.resultType === 'vector') return result.result.some((s) => Number.isFinite(Number(s.value[1])));
  return false;
}

async function evaluate() {
  const problems = [];
  const families = await daemonFamilies();
  const recording = new Map();
  for (const { rule } of allRules()) if (rule.record) recording.set(rule.record, String(rule.expr));
  const resolve = resolver(families, recording);
  const dashboard = readJson(paths.dashboard);
  const pending = pendingMetrics();
  for (const p of pending) if (families.has(p)) problems.push(`${p} is exported by the daemon now: remove it from grafana/tests/pending-metrics.txt`);

  // Names: every metric and label an expression names must be the daemon's (or a recording rule's).
  const shownFamilies = new Set();
  let checked = 0;
  const checkNames = (where, expr, { dashboardQuery }) => {
    const parsed = analyze(substitute(expr, { rateInterval: RATE_INTERVAL }));
    if (parsed.errors.length) problems.push(`${where}: ${parsed.errors[0]}`);
    let usesPending = false;
    const labels = new Set([...PROMETHEUS_LABELS, '__name__']);
    for (const s of parsed.selectors) {
      const r = resolve(s.metric);
      for (const u of r.unknown) problems.push(`${where}: metric ${u} is neither exported by the daemon nor a recording rule (nor pending)`);
      usesPending ||= r.pending;
      for (const l of r.labels) labels.add(l);
      if (r.families.some((f) => families.get(f).type === 'histogram') && /_bucket$/.test(s.metric)) labels.add('le');
      if (dashboardQuery) {
        for (const f of r.families) shownFamilies.add(f);
        if (r.labels.has('target') && !s.matchers.some((m) => m.label === 'target' && m.value === '$target'))
          problems.push(`${where}: ${s.metric} has a target label but the selector does not filter on $target`);
      }
    }
    for (const l of parsed.labelNames)
      if (!labels.has(l) && !parsed.createdLabels.has(l) && !usesPending)
        problems.push(`${where}: label ${l} does not exist on the metrics this expression reads (${[...labels].join(', ')})`);
    checked++;
  };
  const queries = dashboardQueries(dashboard);
  for (const q of queries) checkNames(q.where, q.expr, { dashboardQuery: true });
  for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
    const lv = parseLabelValues(v.query.query);
    if (lv.selector) checkNames(`variable ${v.name}`, lv.selector, { dashboardQuery: false });
    const r = [...PROMETHEUS_LABELS, ...(lv.selector ? analyze(lv.selector).selectors.flatMap((s) => [...resolve(s.metric).labels]) : [])];
    if (!r.includes(lv.label)) problems.push(`variable ${v.name}: label ${lv.label} is not a label of ${lv.selector}`);
  }
  for (const { file, rule } of allRules()) checkNames(`${file} ${rule.alert ?? rule.record}`, String(rule.expr), { dashboardQuery: false });
  for (const [name, f] of families)
    if (name.startsWith('pgwatchdog_') && !shownFamilies.has(name)) problems.push(`the daemon exports ${name} (${f.type}) but no dashboard panel shows it`);

  // Values: every query returns data once the variables are substituted: with All, and with one
  // value per variable but both targets (Grafana writes a multi-value selection as (a|b)).
  const job = (await instant('pgwatchdog_build_info')).result[0]?.metric;
  if (!job) fail('Prometheus has no pgwatchdog_build_info');
  const variableSets = [
    { job: '.+', instance: '.+', target: '.+' },
    { job: job.job, instance: job.instance.replaceAll('.', '\\\\.'), target: '(db|badpw)' },
  ];
  let evaluated = 0;
  for (const variables of variableSets) {
    for (const v of dashboard.templating.list.filter((x) => x.type === 'query')) {
      const lv = parseLabelValues(v.query.query);
      const match = substitute(lv.selector, { variables });
      const values = await api(`/api/v1/label/${lv.label}/values`, { 'match[]': match });
      if (!values.length) problems.push(`variable ${v.name}: label_values(${match}, ${lv.label}) is empty`);
      evaluated++;
    }
    for (const q of queries) {
      const expr = substitute(q.expr, { rateInterval: RATE_INTERVAL, variables });
      const isPending = analyze(expr).selectors.every((s) => resolve(s.metric).pending);
      let result;
      try {
        result = q.target.instant ? await instant(expr) : await range(expr);
      } catch (e) {
        problems.push(`${q.where}: ${e.message}`);
        continue;
      }
      evaluated++;
      if (!seriesHaveData(result) && !isPending) problems.push(`${q.where}: no data for ${expr}`);
      // Readable with 1000 targets: outside collapsed rows, graphs never draw one line per target.
      if (!q.collapsed && ['timeseries', 'heatmap'].includes(q.panel.type) && result.result.some((s) => 'target' in s.metric))
        problems.push(`${q.where}: draws one series per target outside a collapsed row`);
    }
  }
  // Rules: each selector they read has data; the rules evaluate without error on this Prometheus.
  for (const { file, rule } of allRules()) {
    const name = `${file} ${rule.alert ?? rule.record}`;
    try { await instant(String(rule.expr)); evaluated++; } catch (e) { problems.push(`${name}: ${e.message}`); }
    for (const s of analyze(String(rule.expr)).selectors) {
      if (resolve(s.metric).pending) continue;
      const result = await instant(s.text);
      evaluated++;
      if (!result.result.length) problems.push(`${name}: selector ${s.text} has no data`);
    }
    if (rule.record && !(await instant(rule.record)).result.length) problems.push(`${name}: recorded series has no data`);
  }
  const { groups } = await api('/api/v1/rules');
  let rules = 0;
  for (const g of groups) for (const r of g.rules) {
    rules++;
    if (r.health !== 'ok') problems.push(`rule ${r.name} in ${g.name}: health ${r.health}: ${r.lastError}`);
  }
  if (rules !== allRules().length) problems.push(`Prometheus loaded ${rules} rules, the files have ${allRules().length}`);

  for (const p of problems) console.error(`e2e-check: ${p}`);
  if (problems.length) fail(`${problems.length} problem(s)`);
  console.log(`e2e-check: ${checked} expressions name only what the daemon exports (${[...shownFamilies].length} pgwatchdog families, all on panels; pending: ${pending.join(', ') || 'none'}); ` +
    `${evaluated} queries evaluated with data; ${rules} rules healthy`);
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (!PROM) fail('PROM_URL is not set');
  switch (command) {
    case 'wait-series': {
      const [expr, seconds = '30'] = args;
      await until(`${expr} returns a sample`, Number(seconds), async () => (await instant(expr)).result.length > 0);
      console.log(`e2e-check: ${expr}: yes`);
      break;
    }
    case 'wait-alert': {
      const [name, target, seconds = '30'] = args;
      let state = '';
      await until(`alert ${name}{target="${target}"} pending or firing`, Number(seconds), async () => {
        const found = await activeAlerts(name, target);
        state = found[0]?.state;
        return found.length > 0;
      });
      console.log(`e2e-check: alert ${name}${target === '-' ? '' : `{target="${target}"}`} is ${state}`);
      break;
    }
    case 'no-alert': {
      const [name, target] = args;
      const found = await activeAlerts(name, target);
      if (found.length) fail(`alert ${name}{target="${target}"} is ${found[0].state}, and must not be`);
      console.log(`e2e-check: alert ${name}{target="${target}"} is silent, as it must be`);
      break;
    }
    case 'evaluate':
      await evaluate();
      break;
    default:
      fail(`unknown command ${command}`);
  }
}

main().catch((e) => fail(e.stack ?? String(e)));
