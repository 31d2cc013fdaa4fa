#!/usr/bin/python3
"""A Patroni member added to and removed from the real cluster, against a `patroni:` target.

Runs against a stack of tests/ha_stack/ha-stack (its HA_ROOT):
  1. starts the pgwatchdog daemon with one `patroni:` target, `ha`, reading both nodes' REST
     APIs every --discovery-interval (2 s: the stack's loop_wait, as docs/ha-stack.md's example);
  2. every 100 ms: the cluster's members from Patroni's GET /cluster (those listed with a host and
     a port: pgwatchdog skips the others) and the `ha/...` targets in pgwatchdog's /metrics;
  3. adds a member (`ha-stack start-node ROOT 3`: a third Patroni node, bootstrapped from the
     leader), waits until its target is up, then removes it (`ha-stack stop-node ROOT 3`:
     Patroni stops its PostgreSQL and leaves the cluster);
  4. reports when Patroni's /cluster listed node3 and when it stopped listing it, and when
     ha/node3 appeared in and left /metrics.
--check asserts that each /metrics change follows Patroni's within one discovery interval
(+ 0.2 s: both are sampled every 100 ms).

Usage: ha_members.py --root HA_ROOT --daemon PATH [--discovery-interval S] [--json FILE] [--check]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from http_helpers import free_port, http_get  # noqa: E402
from ha_stack import STACK_DIR, Daemon, load_env, target_summaries, wait_healthy  # noqa: E402

SAMPLING_SLACK = 0.2
NEW = 3


def die(msg):
    sys.exit("ha_members: " + msg)


def cluster_members(env):
    """The names Patroni's GET /cluster lists with a host and a port (either node's API), or None."""
    for n in (1, 2):
        code, body = http_get(f"http://127.0.0.1:{env[f'HA_NODE{n}_API_PORT']}/cluster", 0.5)
        if code != 200:
            continue
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        return {m["name"] for m in doc.get("members", []) if m.get("host") and m.get("port")}
    return None


class Sampler(threading.Thread):
    def __init__(self, env, metrics_url, stop):
        super().__init__(daemon=True)
        self.env, self.url, self.stop = env, metrics_url, stop
        self.cluster = []   # (t, {member names} or None)
        self.metrics = []   # (t, {target: {up, ...}} or None)

    def run(self):
        while not self.stop.is_set():
            t = time.time()
            self.cluster.append((t, cluster_members(self.env)))
            code, body = http_get(self.url, 0.5)
            self.metrics.append((time.time(), target_summaries(body) if code == 200 else None))
            self.stop.wait(max(0.0, 0.1 - (time.time() - t)))


def first(samples, after, pred):
    return next((t for t, v in samples if t >= after and v is not None and pred(v)), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.environ.get("HA_ROOT"))
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--discovery-interval", type=float, default=2.0)
    ap.add_argument("--json")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not args.root:
        die("--root (or HA_ROOT) is required: run under `ha-stack run --` or pass the stack's root")
    env = load_env(args.root, die)
    wait_healthy(env, 120)
    workdir = os.path.join(env["HA_ROOT"], "members")
    os.makedirs(workdir, exist_ok=True)
    listen = f"127.0.0.1:{free_port()}"
    cfg = os.path.join(workdir, "pgwatchdog.yaml")
    with open(cfg, "w") as f:
        f.write(f'listen: "{listen}"\ntargets:\n  - name: ha\n'
                f'    patroni: ["http://127.0.0.1:{env["HA_NODE1_API_PORT"]}", '
                f'"http://127.0.0.1:{env["HA_NODE2_API_PORT"]}"]\n'
                f'    dsn: "dbname=postgres user=postgres"\n'
                f'    discovery_interval: {args.discovery_interval:g}s\n')
    daemon = Daemon(args.daemon, cfg, os.path.join(workdir, "pgwatchdog.log"))
    metrics_url = f"http://{listen}/metrics"
    stop = threading.Event()
    sampler = Sampler(env, metrics_url, stop)
    name = f"node{NEW}"
    target = f"ha/{name}"
    stack = os.path.join(STACK_DIR, "ha-stack")
    try:
        daemon.wait_up(metrics_url, ["ha/node1", "ha/node2"], die)
        sampler.start()
        t_add = time.time()
        subprocess.run([stack, "start-node", env["HA_ROOT"], str(NEW)], check=True, stdout=subprocess.DEVNULL)
        daemon.wait_up(metrics_url, [target], die, 60)
        time.sleep(args.discovery_interval)
        t_remove = time.time()
        subprocess.run([stack, "stop-node", env["HA_ROOT"], str(NEW)], check=True)
        deadline = time.time() + 60 + args.discovery_interval
        while time.time() < deadline:
            m = sampler.metrics[-1][1] if sampler.metrics else None
            if m is not None and target not in m and sampler.cluster[-1][1] is not None \
                    and name not in sampler.cluster[-1][1]:
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        sampler.join(3)
        daemon.stop()
    c_in = first(sampler.cluster, t_add, lambda v: name in v)
    m_in = first(sampler.metrics, t_add, lambda v: target in v)
    m_up = first(sampler.metrics, t_add, lambda v: v.get(target, {}).get("up") == 1)
    c_out = first(sampler.cluster, t_remove, lambda v: name not in v)
    m_out = first(sampler.metrics, t_remove, lambda v: target not in v)
    d = (lambda a, b: None if None in (a, b) else round(b - a, 2))
    res = {"discovery_interval_s": args.discovery_interval,
           "added": {"cluster_listed_after_start_s": d(t_add, c_in), "metrics_after_cluster_s": d(c_in, m_in),
                     "up_after_cluster_s": d(c_in, m_up)},
           "removed": {"cluster_unlisted_after_stop_s": d(t_remove, c_out), "metrics_after_cluster_s": d(c_out, m_out)}}
    print(f"| change | Patroni's /cluster | {target} in /metrics after /cluster | up after /cluster |")
    print("|---|---|---|---|")
    print(f"| added (start-node) | listed {res['added']['cluster_listed_after_start_s']} s after the start "
          f"| {res['added']['metrics_after_cluster_s']} s | {res['added']['up_after_cluster_s']} s |")
    print(f"| removed (stop-node) | unlisted {res['removed']['cluster_unlisted_after_stop_s']} s after the stop "
          f"| {res['removed']['metrics_after_cluster_s']} s | — |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    if args.check:
        bound = args.discovery_interval + SAMPLING_SLACK
        misses = [f"{k}: {v['metrics_after_cluster_s']} s after Patroni's /cluster (bound {bound} s)"
                  for k, v in (("added", res["added"]), ("removed", res["removed"]))
                  if v["metrics_after_cluster_s"] is None or v["metrics_after_cluster_s"] > bound]
        if misses:
            print("\nha_members: MISSED TARGETS:\n  " + "\n  ".join(misses), file=sys.stderr)
            sys.exit(1)
        print("ha_members: every target met", file=sys.stderr)


if __name__ == "__main__":
    main()
