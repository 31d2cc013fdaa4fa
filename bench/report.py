#!/usr/bin/env python3
"""Gathers the benchmarks' JSON lines (bench/results/raw/*.jsonl) into one JSON file of every
figure, prints the side-by-side table (also written as latest.txt) and draws the plots.

Exits 1 when a benchmark that ran left an expected figure out (neither measured nor skipped
with a reason), or measured it as null: a smoke run must fail if a measurement broke.
"""
import argparse
import datetime
import glob
import json
import math
import os
import platform
import re
import sys

# Figures each benchmark must produce (a prefix matches any size), when it ran at all.
EXPECTED = {
    "detection": ["terminate.floor.p50", "terminate.embedded.p50", "terminate.thread.p50",
                  "terminate.daemon.p50", "terminate.poll_1s.p50", "terminate.poll_10s_model.p50",
                  "stop_fast.floor.p50", "stop_fast.embedded.p50", "stop_fast.thread.p50",
                  "stop_immediate.floor.p50", "stop_immediate.embedded.p50",
                  "terminate.embedded_path.p50", "terminate_"],
    "idle": ["idle."],
    "statements": ["statements."],
    "storm": ["storm.trust.", "storm.scram."],
    "metrics": ["metrics."],
    "scale": ["scale.startup_s.", "scale.sigterm_exit_s.", "scale.reload_unchanged_stall_s.",
              "scale.remove_half_s.", "scale.library_startup_s.", "scale.library_destroy_s.",
              "scale.bulk_add_longest_stretch_cpu_s.", "scale.bulk_remove_half_longest_stretch_cpu_s.",
              "scale.bulk_remove_all_longest_stretch_cpu_s."],
}

WATCHERS = ["floor", "embedded", "thread", "daemon", "poll_1s", "poll_1s_model", "poll_10s_model"]
EVENTS = ["terminate", "stop_fast", "stop_immediate"]


def events(names):
    """EVENTS, and after `terminate` the runs with more watched connections (terminate_10000)."""
    sized = sorted({n.split(".")[0] for n in names if re.match(r"terminate_\d+\.", n)},
                   key=lambda e: int(e.split("_")[1]))
    return EVENTS[:1] + sized + EVENTS[1:]


def load(raw_dir):
    figures, samples, skipped, problems = {}, {}, {}, []
    for path in sorted(glob.glob(os.path.join(raw_dir, "*.jsonl"))):
        with open(path) as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as e:
                    problems.append(f"{path}:{number}: not JSON ({e})")
                    continue
                bench, figure = entry["bench"], entry["figure"]
                if "skipped" in entry:
                    skipped.setdefault(bench, {})[figure] = entry["skipped"]
                elif "samples" in entry:
                    samples.setdefault(bench, {})[figure] = {"unit": entry["unit"], "samples": entry["samples"]}
                else:
                    figures.setdefault(bench, {})[figure] = {
                        k: entry[k] for k in ("value", "unit", "note") if k in entry}
    return figures, samples, skipped, problems


def check(ran, figures, skipped):
    problems = []
    for bench in ran:
        have = figures.get(bench, {})
        skip = skipped.get(bench, {})
        for want in EXPECTED.get(bench, []):
            if not any(f.startswith(want) for f in list(have) + list(skip)):
                problems.append(f"{bench}: no figure {want}*")
        for name, entry in have.items():
            if entry.get("value") is None:
                problems.append(f"{bench}: {name} has no value")
    return problems


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "us":
        if value >= 1e6:
            return f"{value / 1e6:.2f} s"
        if value >= 1e3:
            return f"{value / 1e3:.2f} ms"
        return f"{value:.0f} µs"
    if unit == "s":
        return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "B":
        return f"{value / 1024:.1f} KiB" if abs(value) >= 1024 else f"{value:.0f} B"
    if unit == "%":
        return f"{value:.4f} %"
    if unit == "bool":
        return "yes" if value else "no"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}" + (f" {unit}" if unit not in ("1", "") else "")
    return f"{value:.0f}" + (f" {unit}" if unit not in ("1", "") else "")


def table(figures, skipped):
    lines = []
    det = figures.get("detection", {})
    if det:
        present = [w for w in WATCHERS if any(f"{e}.{w}.p50" in det for e in EVENTS)]
        lines.append("Detection latency, p50 / p99 (from the fault to the watcher knowing)")
        header = "| event | " + " | ".join(present) + " |"
        lines += [header, "|" + "---|" * (len(present) + 1)]
        for event in events(det):
            cells = []
            for w in present:
                p50 = det.get(f"{event}.{w}.p50", {}).get("value")
                p99 = det.get(f"{event}.{w}.p99", {}).get("value")
                cells.append("–" if p50 is None else f"{fmt(p50, 'us')} / {fmt(p99, 'us')}")
            lines.append(f"| {event} | " + " | ".join(cells) + " |")
        for event in events(det):
            p50 = det.get(f"{event}.embedded_path.p50", {}).get("value")
            if p50 is not None:
                p99 = det.get(f"{event}.embedded_path.p99", {}).get("value")
                lines.append(f"{event}: the library's part of embedded (loop callback to on_down): "
                             f"{fmt(p50, 'us')} / {fmt(p99, 'us')}")
        lines.append("")
    for bench in ["idle", "statements", "storm", "metrics", "scale"]:
        entries = figures.get(bench, {})
        if not entries and not skipped.get(bench):
            continue
        lines.append(f"{bench}")
        lines += ["| figure | value |", "|---|---|"]
        for name in sorted(entries):
            e = entries[name]
            lines.append(f"| {name} | {fmt(e.get('value'), e.get('unit', ''))} |")
        for name, reason in sorted(skipped.get(bench, {}).items()):
            lines.append(f"| {name} | skipped: {reason} |")
        lines.append("")
    for name, reason in sorted(skipped.get("detection", {}).items()):
        lines.append(f"detection {name}: skipped: {reason}")
    return "\n".join(lines)


def finish(plt, fig, ax, path):
    """Grid, legend, saved to `path`, closed: the path."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plots(samples, figures, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is missing (python3-matplotlib): no plots", file=sys.stderr)
        return []
    written = []
    det = samples.get("detection", {})
    for event in events(det):
        series = {w: det[f"{event}.{w}"]["samples"] for w in WATCHERS if f"{event}.{w}" in det}
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, values in series.items():
            xs = sorted(v / 1e3 for v in values if v is not None)
            if not xs:
                continue
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.step(xs, ys, where="post", label=f"{name} (n={len(xs)})",
                    linestyle="--" if "model" in name else "-")
        ax.set_xscale("log")
        ax.set_xlabel("detection latency (ms, log scale)")
        ax.set_ylabel("fraction of samples")
        ax.set_title(f"Detection latency CDF: {event.replace('_', ' ')}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        path = os.path.join(out_dir, f"detection_{event}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    scale = figures.get("scale", {})
    curves = {}
    for name, entry in scale.items():
        parts = name.split(".")  # scale.<what>.<size>
        if (len(parts) == 3 and parts[2].isdigit() and parts[1].endswith("_s")
                and entry.get("value") is not None):
            curves.setdefault(parts[1], []).append((int(parts[2]), entry["value"]))
    # The loop's longest busy stretch in fleet operations: a plot of its own (the share of it in
    # the watchdog's callbacks is a figure to read, not a curve).
    stretches = {what: points for what, points in curves.items()
                 if what.endswith("_longest_stretch_cpu_s")}
    curves = {what: points for what, points in curves.items() if "longest_stretch" not in what}
    if stretches:
        fig, ax = plt.subplots(figsize=(7, 4))
        for what, points in sorted(stretches.items()):
            points.sort()
            label = what.replace("_longest_stretch_cpu_s", "").replace("bulk_", "")
            ax.plot([p[0] for p in points], [p[1] * 1e3 for p in points], marker="o", label=label)
        ax.axhline(20, color="red", linestyle="--", linewidth=1, label="20 ms")
        ax.set_xscale("log")
        ax.set_xlabel("targets (one connection each)")
        ax.set_ylabel("longest busy stretch of the loop (ms CPU)")
        ax.set_title("Fleet operations: the loop's longest busy stretch")
        ax.set_ylim(bottom=0)
        written.append(finish(plt, fig, ax, os.path.join(out_dir, "loop_stretch.png")))
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4))
        for what, points in sorted(curves.items()):
            points.sort()
            ax.plot([p[0] for p in points], [max(p[1], 1e-4) for p in points], marker="o", label=what)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("targets / connections")
        ax.set_ylabel("seconds (log scale)")
        ax.set_title("Scale curves: daemon (1k, 10k) and library (to 100k)")
        written.append(finish(plt, fig, ax, os.path.join(out_dir, "scale.png")))
    return written


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", default="full")
    parser.add_argument("--seconds", type=int, default=0)
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--previous", help="an earlier latest.json: the benchmarks that did not "
                        "run now keep its figures (scripts/bench --only)")
    args = parser.parse_args()
    figures, samples, skipped, problems = load(args.raw)
    ran = [os.path.basename(p)[:-6] for p in glob.glob(os.path.join(args.raw, "*.jsonl"))]
    problems += check(ran, figures, skipped)
    kept = {}
    if args.previous and os.path.exists(args.previous):
        with open(args.previous) as f:
            previous = json.load(f)
        for bench in set(previous.get("figures", {})) | set(previous.get("skipped", {})):
            if bench in ran:
                continue
            for mine, theirs in ((figures, "figures"), (samples, "samples"), (skipped, "skipped")):
                if bench in previous.get(theirs, {}):
                    mine[bench] = previous[theirs][bench]
            kept[bench] = previous.get("meta", {}).get("kept", {}).get(bench) or {
                k: previous.get("meta", {}).get(k) for k in ("commit", "date", "mode")}
    text = table(figures, skipped)
    print(text)
    with open(os.path.join(args.out, "latest.txt"), "w") as f:
        f.write(text + "\n")
    written = plots(samples, figures, args.out)
    result = {
        "meta": {
            "mode": args.mode, "commit": args.commit, "seconds": args.seconds,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "machine": platform.machine(), "kernel": platform.release(),
            "ran": sorted(ran), "kept": kept,
        },
        "figures": figures, "samples": samples, "skipped": skipped, "problems": problems,
        "plots": [os.path.basename(p) for p in written],
    }
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    for p in problems:
        print(f"report: PROBLEM: {p}", file=sys.stderr)
    print(f"report: {sum(len(v) for v in figures.values())} figures, {len(written)} plots, "
          f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
