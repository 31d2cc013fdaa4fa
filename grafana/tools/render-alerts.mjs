#!/usr/bin/env node
// Renders grafana/prometheus/pgwatchdog-alerts.yaml from alerts.yaml.in and thresholds.yaml, so
// that every threshold lives in thresholds.yaml only.
//
// Usage: node grafana/tools/render-alerts.mjs [--check]
//   --check  render in memory and exit 1 if the committed file differs (what CI runs)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'prometheus');
const templatePath = join(dir, 'alerts.yaml.in');
const thresholdsPath = join(dir, 'thresholds.yaml');
const outputPath = join(dir, 'pgwatchdog-alerts.yaml');

export function render(template, thresholds) {
  const used = new Set();
  const unknown = new Set();
  // The template's header comment explains the placeholders: it is replaced, not rendered.
  const body = template.replace(/^(#.*\n)+/, '').replace(/%\{([a-z0-9_]+)\}/g, (_, name) => {
    if (!(name in thresholds)) {
      unknown.add(name);
      return '';
    }
    used.add(name);
    return String(thresholds[name]);
  });
  const problems = [];
  for (const name of unknown) problems.push(`alerts.yaml.in uses %{${name}}, which thresholds.yaml does not define`);
  for (const name of Object.keys(thresholds))
    if (!used.has(name)) problems.push(`thresholds.yaml defines ${name}, which alerts.yaml.in never uses`);
  if (/%\{/.test(body)) problems.push('alerts.yaml.in has a malformed %{...} placeholder');
  const header =
    '# GENERATED from alerts.yaml.in and thresholds.yaml by grafana/tools/render-alerts.mjs: edit those.\n' +
    '# Needs the recording rules of pgwatchdog-rules.yaml loaded in the same Prometheus.\n';
  return { text: header + body, problems };
}

function main() {
  const check = process.argv.includes('--check');
  const thresholds = parse(readFileSync(thresholdsPath, 'utf8'));
  if (thresholds === null || typeof thresholds !== 'object' || Array.isArray(thresholds)) {
    console.error(`${thresholdsPath}: expected a map of name: value`);
    process.exit(2);
  }
  for (const [name, value] of Object.entries(thresholds))
    if (typeof value !== 'string' && typeof value !== 'number') {
      console.error(`${thresholdsPath}: ${name} must be a number or a string, not ${JSON.stringify(value)}`);
      process.exit(2);
    }
  const { text, problems } = render(readFileSync(templatePath, 'utf8'), thresholds);
  if (problems.length) {
    for (const p of problems) console.error(`render-alerts: ${p}`);
    process.exit(2);
  }
  if (check) {
    let committed = '';
    try { committed = readFileSync(outputPath, 'utf8'); } catch { /* missing: differs */ }
    if (committed !== text) {
      console.error(`render-alerts: ${outputPath} is not what alerts.yaml.in and thresholds.yaml render to;` +
        ' run node grafana/tools/render-alerts.mjs and commit the result');
      process.exit(1);
    }
    console.log('render-alerts: pgwatchdog-alerts.yaml is up to date');
    return;
  }
  writeFileSync(outputPath, text);
  console.log(`render-alerts: wrote ${outputPath}`);
}

main();
