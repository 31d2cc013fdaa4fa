// What the checks need to know about a PromQL expression, from the parser Prometheus's own UI
// uses (@prometheus-io/lezer-promql): syntax errors, the selectors with their matchers, whether
// each sits under rate()/increase(), the label names it names, and the range of every rate.
import { parser } from '@prometheus-io/lezer-promql';

const RATE_LIKE = new Set(['rate', 'irate', 'increase']);
// Grafana's range variables stand where PromQL wants a duration; the parser needs a real one.
// This sentinel marks where $__rate_interval stood (no dashboard writes 1234567ms by hand).
export const RATE_INTERVAL_SENTINEL = '1234567ms';

/** The expression as Grafana would send it, with `rateInterval` for $__rate_interval and the
 *  template variables replaced by `variables` (name -> value). */
export function substitute(expr, { rateInterval = RATE_INTERVAL_SENTINEL, variables = {} } = {}) {
  let out = expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('${__rate_interval}', rateInterval)
    .replaceAll('$__interval', rateInterval)
    .replaceAll('$__range', rateInterval);
  for (const [name, value] of Object.entries(variables))
    out = out.replaceAll('${' + name + '}', value).replace(new RegExp('\\$' + name + '\\b', 'g'), value);
  return out;
}

function unquote(literal) {
  if (literal.startsWith('`')) return literal.slice(1, -1);
  try {
    return JSON.parse(literal.startsWith("'") ? '"' + literal.slice(1, -1).replaceAll('"', '\\"') + '"' : literal);
  } catch {
    return literal.slice(1, -1);
  }
}

/**
 * @returns {{errors: string[], selectors: {metric: string, matchers: {label: string, op: string, value: string}[],
 *            underRate: boolean}[], labelNames: Set<string>, createdLabels: Set<string>,
 *            rateRanges: {func: string, range: string}[]}}
 */
export function analyze(text) {
  const tree = parser.parse(text);
  const errors = [];
  const selectors = [];
  const labelNames = new Set();
  const rateRanges = [];
  const createdLabels = new Set(); // destination labels of label_replace/label_join
  const stack = []; // enclosing nodes, innermost last
  tree.iterate({
    enter(node) {
      const name = node.type.name;
      const nodeText = text.slice(node.from, node.to);
      if (node.type.isError) errors.push(`syntax error at offset ${node.from}: ${JSON.stringify(text.slice(Math.max(0, node.from - 20), node.from + 20))}`);
      if (name === 'FunctionCall') {
        const ident = node.node.getChild('FunctionIdentifier');
        const func = ident ? text.slice(ident.from, ident.to) : '';
        stack.push({ name, func });
        if (RATE_LIKE.has(func)) {
          const matrix = node.node.getChild('FunctionCallBody')?.getChild('MatrixSelector');
          const duration = matrix?.lastChild;
          rateRanges.push({ func, range: duration ? text.slice(duration.from, duration.to) : '(no range)' });
        }
        if (func === 'label_replace' || func === 'label_join') {
          // label_replace(v, dst, replacement, src, regex); label_join(v, dst, sep, src...)
          const body = node.node.getChild('FunctionCallBody');
          const args = [];
          for (let c = body?.firstChild; c; c = c.nextSibling) if (c.type.name === 'StringLiteral') args.push(unquote(text.slice(c.from, c.to)));
          createdLabels.add(args[0]);
          const sources = func === 'label_replace' ? [args[2]] : args.slice(2);
          for (const l of sources) if (l) labelNames.add(l);
        }
        return;
      }
      stack.push({ name });
      if (name === 'LabelName') labelNames.add(nodeText);
      if (name === 'VectorSelector') {
        const ident = node.node.getChild('Identifier');
        const matchers = [];
        const list = node.node.getChild('LabelMatchers');
        for (let m = list?.firstChild; m; m = m.nextSibling) {
          const ln = m.getChild('LabelName');
          const op = m.getChild('MatchOp');
          const value = m.getChild('StringLiteral');
          if (ln && op && value)
            matchers.push({ label: text.slice(ln.from, ln.to), op: text.slice(op.from, op.to), value: unquote(text.slice(value.from, value.to)) });
        }
        let metric = ident ? text.slice(ident.from, ident.to) : '';
        const nameMatcher = matchers.find((m) => m.label === '__name__' && m.op === '=');
        if (!metric && nameMatcher) metric = nameMatcher.value;
        // Directly under rate(...[range]) means: VectorSelector <- MatrixSelector <- FunctionCallBody <- FunctionCall(rate).
        const n = stack.length;
        const underRate = n >= 4 && stack[n - 2].name === 'MatrixSelector' && stack[n - 3].name === 'FunctionCallBody' &&
          stack[n - 4].name === 'FunctionCall' && RATE_LIKE.has(stack[n - 4].func);
        selectors.push({ metric, matchers, underRate, text: nodeText, inRange: n >= 2 && stack[n - 2].name === 'MatrixSelector' });
      }
    },
    leave() {
      stack.pop();
    },
  });
  return { errors, selectors, labelNames, createdLabels, rateRanges };
}

/** Grafana's label_values(query, label) / label_values(label) variable queries. */
export function parseLabelValues(query) {
  const m = /^\s*label_values\(\s*(?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(query);
  if (!m) return null;
  return { selector: m[1] ?? null, label: m[2] };
}
