"""The Prometheus text format as the Python harnesses of bench/ read it (a /metrics scrape)."""

import re

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ([0-9.eE+-]+|NaN|[+-]Inf)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{metric name: [(labels dict, value)]} of every sample line; comments are skipped. Label
    values are kept as written (escapes not undone): pgwatchdog's target names have none."""
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = SAMPLE_RE.match(line)
        if m:
            out.setdefault(m.group(1), []).append((dict(LABEL_RE.findall(m.group(2) or "")),
                                                   float(m.group(3))))
    return out
