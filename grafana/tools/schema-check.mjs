#!/usr/bin/env node
// Type-checks the dashboard JSON against @grafana/schema (the TypeScript types Grafana generates
// from its CUE schema), with the pinned TypeScript compiler: the dashboard as a whole against
// `Dashboard`, and each panel's `options` and `fieldConfig.defaults.custom` against the types of
// its panel plugin. Object literals are checked for excess properties, so a misspelt key fails.
//
// Usage: node grafana/tools/schema-check.mjs [dashboard.json]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { allPanels, paths, readJson } from './grafana-files.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PLUGINS = {
  // The stat plugin has no custom field config: its `custom` must be empty.
  stat: ['Stat', 'stat/panelcfg/x/StatPanelCfg_types.gen', 'Record<string, never>'],
  table: ['Table', 'table/panelcfg/x/TablePanelCfg_types.gen'],
  timeseries: ['TimeSeries', 'timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen'],
  heatmap: ['Heatmap', 'heatmap/panelcfg/x/HeatmapPanelCfg_types.gen'],
  'state-timeline': ['StateTimeline', 'statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen'],
};

export function source(dashboard) {
  const lines = [
    "import type { Dashboard } from '@grafana/schema';",
    ...Object.values(PLUGINS).map(([ns, path]) => `import type * as ${ns} from '@grafana/schema/dist/esm/raw/composable/${path}';`),
    // JSON has no enums: Grafana's string enums are compared by their values.
    'type Json<T> = T extends string ? `${T}` : T extends readonly (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;',
    `export const dashboard = ${JSON.stringify(dashboard, null, 2)} satisfies Json<Dashboard>;`,
  ];
  for (const { panel } of allPanels(dashboard)) {
    if (panel.type === 'row') continue;
    const plugin = PLUGINS[panel.type];
    if (!plugin) { lines.push(`// panel ${panel.id}: no types for ${panel.type}\nconst unknownPanelType_${panel.id}: never = 0;`); continue; }
    const [ns, , customType = `${ns}.FieldConfig`] = plugin;
    lines.push(`// panel ${panel.id} "${panel.title}" (${panel.type})`);
    lines.push(`export const options_${panel.id} = ${JSON.stringify(panel.options ?? {})} satisfies Json<${ns}.Options>;`);
    lines.push(`export const custom_${panel.id} = ${JSON.stringify(panel.fieldConfig?.defaults?.custom ?? {})} satisfies Json<${customType}>;`);
  }
  return lines.join('\n') + '\n';
}

export function typeCheck(dashboard) {
  const dir = join(here, '.typecheck');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'dashboard-check.ts');
  writeFileSync(file, source(dashboard));
  const program = ts.createProgram([file], {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler, skipLibCheck: true, types: [],
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  return diagnostics.map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
    return `${where ? `${d.file.fileName}:${where.line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n  ')}`;
  });
}

function main() {
  const path = process.argv[2] ?? paths.dashboard;
  const dashboard = readJson(path);
  const problems = typeCheck(dashboard);
  for (const p of problems) console.error(`schema-check: ${p}`);
  if (problems.length) {
    console.error(`schema-check: ${path} does not match @grafana/schema (${problems.length} error(s); the generated file stays in ${join(here, '.typecheck')})`);
    process.exit(1);
  }
  // A check that cannot fail proves nothing: a misspelt key and a wrong enum value must be caught.
  const broken = structuredClone(dashboard);
  broken.graphTooltp = 1;
  broken.panels.find((p) => p.type === 'stat').options.colorMode = 'rainbow';
  const caught = typeCheck(broken);
  if (!caught.some((p) => p.includes('graphTooltp')) || !caught.some((p) => p.includes('rainbow'))) {
    console.error(`schema-check: self-test failed: a misspelt key or a bad enum value was not caught:\n${caught.join('\n')}`);
    process.exit(1);
  }
  rmSync(join(here, '.typecheck'), { recursive: true, force: true });
  console.log(`schema-check: ${path} matches @grafana/schema ${readJson(join(here, 'node_modules/@grafana/schema/package.json')).version} (typescript ${ts.version}); self-test caught both deliberate errors`);
}

main();
