#!/usr/bin/python3
"""pgwatchdog next to a 1 s poller on every path of a real HA stack, under real faults.

Runs against a stack of tests/ha_stack/ha-stack (its HA_ROOT). For each scenario:
  1. waits until the stack is healthy (leader, streaming replica, HAProxy agreeing);
  2. starts the pgwatchdog daemon with its defaults (only `listen` and the targets are set), one
     connection per path, and a poller per path that runs `SELECT pg_is_in_recovery()` every 1 s
     with a 5 s client-side deadline (psycopg2 in async mode, so the deadline holds even when the
     server or the network is silent);
  3. samples the daemon's /metrics every 100 ms, and the truth (each node's Patroni role, whether
     the original primary's postmaster still runs) every 100 ms;
  4. injects the fault with tests/ha_stack/ha-fault, observes for --observe seconds after it ends;
  5. reports per path: detection (first disconnect counted / first failed poll) and recovery
     (up again after the last loss / first good poll after the last failed one), both measured
     from the fault's event; the causes pgwatchdog gave; the role at the end against Patroni's;
     for how long each said a wrong role; round trips per hour.

The paths: direct_primary and direct_replica (the nodes' own ports, by their role when the
scenario starts), haproxy_primary, haproxy_replica, pgbouncer_session, pgbouncer_transaction.

--check turns the issue's targets into assertions (exit 1 naming each miss):
  * nothing missed: a path where the poller saw a failure must have a disconnect in pgwatchdog;
  * detection within 0.5 s of the event where the fault sends something (a FATAL, a FIN), on
    the paths that carry it; within heartbeat + probe_timeout (5 s + 5 s assumed) on every path
    to the primary for a hung or half-open primary;
  * the cause on those paths: server_shutdown for a switchover or restart, server_crash for a
    kill -9, probe_timeout for a hung primary, probe_timeout or timed_out for a half-open one;
  * recovery no later than the poller's + 0.5 s;
  * the role at the end is Patroni's, and never wrong for longer than one heartbeat (5 s).
These are wall-time bounds on purpose: what is asserted is what a user sees.

Usage: ha_matrix.py --root HA_ROOT --daemon PATH [--scenarios LIST] [--paths LIST]
                    [--observe S] [--json FILE] [--check] [--bind-session-pool]
Scenarios: switchover, kill9, sigstop, blackhole, restart (default: all, in that order).
"""

import argparse
import json
import os
import sys
import threading
import time

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from http_helpers import free_port, http_get  # noqa: E402  (shared with bench/soak)
from ha_stack import (Daemon, leader, target_summaries, patroni_role, pg_wait,  # noqa: E402
                      postmaster_pid, postmaster_stopping, run_fault,  # (shared with ha_routing)
                      wait_healthy)
import ha_stack  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PATHS = ["direct_primary", "direct_replica", "haproxy_primary", "haproxy_replica",
         "pgbouncer_session", "pgbouncer_transaction"]
SCENARIOS = {
    # name: (ha-fault arguments, sends something to the clients?, paths that carry it)
    "switchover": (["switchover"], True, ["direct_primary", "haproxy_primary", "pgbouncer_session"]),
    "kill9": (["kill9"], True, ["direct_primary", "haproxy_primary", "pgbouncer_session"]),
    "sigstop": (["sigstop", "12"], False, ["direct_primary", "haproxy_primary", "pgbouncer_session",
                                           "pgbouncer_transaction"]),
    "blackhole": (["blackhole", "15"], False, ["direct_primary", "haproxy_primary", "pgbouncer_session",
                                               "pgbouncer_transaction"]),
    "restart": (["restart"], True, ["direct_primary", "haproxy_primary", "pgbouncer_session"]),
}
# The cause pgwatchdog must give on the paths that carry the fault (one of these): a planned
# stop is server_shutdown (FATAL 57P01), a crash is server_crash (57P01 "unexpected postmaster
# exit" / 57P02: crash told apart from a planned stop by SQLSTATE and message), a hung server
# can only be a probe_timeout, a silent network a probe_timeout or the kernel's timed_out.
EXPECTED_CAUSES = {
    "switchover": {"server_shutdown"},
    "restart": {"server_shutdown"},
    "kill9": {"server_crash"},
    "sigstop": {"probe_timeout"},
    "blackhole": {"probe_timeout", "timed_out"},
}
HEARTBEAT_ASSUMED = 5.0     # the default heartbeat the targets assume
PROBE_TIMEOUT = 5.0         # pgwatchdog's default probe_timeout
SIGNALLED_BOUND = 0.5
RECOVERY_SLACK = 0.5
POLL_INTERVAL = 1.0
POLL_TIMEOUT = 5.0


def die(msg):
    sys.exit("ha_matrix: " + msg)


class Poller(threading.Thread):
    """SELECT pg_is_in_recovery() every POLL_INTERVAL on one path, with a client-side deadline."""

    def __init__(self, name, port, stop):
        super().__init__(daemon=True)
        self.name_, self.port, self.stop = name, port, stop
        self.results = []  # (t_end, ok, in_recovery or None, error)
        self.round_trips = 0
        self.conn = None

    def once(self):
        deadline = time.time() + POLL_TIMEOUT
        if self.conn is None:
            self.conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname="postgres",
                                         user="postgres", application_name=poller_app(self.name_),
                                         connect_timeout=int(POLL_TIMEOUT), async_=1)
            pg_wait(self.conn, deadline)
        cur = self.conn.cursor()
        cur.execute("SELECT pg_is_in_recovery()")
        self.round_trips += 1
        pg_wait(self.conn, deadline)
        return cur.fetchone()[0]

    def run(self):
        while not self.stop.is_set():
            started = time.time()
            try:
                hs = self.once()
                self.results.append((time.time(), True, hs, None))
            except Exception as e:  # any failure is what the poller reports; start afresh
                self.results.append((time.time(), False, None, str(e).strip().splitlines()[0][:120]
                                     if str(e).strip() else type(e).__name__))
                if self.conn is not None:
                    try:
                        self.conn.close()
                    except Exception:
                        pass
                    self.conn = None
            self.stop.wait(max(0.0, POLL_INTERVAL - (time.time() - started)))
        if self.conn is not None:
            self.conn.close()


class Sampler(threading.Thread):
    """Every 100 ms: the daemon's /metrics, each node's Patroni role, the old primary alive?"""

    def __init__(self, env, metrics_url, data_dir, watched_pid, stop):
        super().__init__(daemon=True)
        self.env, self.url, self.data_dir, self.pid, self.stop = env, metrics_url, data_dir, watched_pid, stop
        self.samples = []   # (t, parsed metrics or None)
        self.truth = []     # (t, {1: role, 2: role})
        self.stopping_at = None
        self.roles = {1: None, 2: None}
        self.role_thread = threading.Thread(target=self.poll_roles, daemon=True)

    def poll_roles(self):
        # Separate thread: a stopped Patroni makes its REST call take the whole 0.5 s timeout.
        while not self.stop.is_set():
            t = time.time()
            roles = {n: patroni_role(self.env, n) for n in (1, 2)}
            self.truth.append((t, roles))
            self.stop.wait(max(0.0, 0.1 - (time.time() - t)))

    def run(self):
        self.role_thread.start()
        while not self.stop.is_set():
            t = time.time()
            code, body = http_get(self.url, 0.5)
            self.samples.append((t, target_summaries(body) if code == 200 else None))
            if self.stopping_at is None and self.pid is not None and \
                    postmaster_stopping(self.data_dir, self.pid):
                self.stopping_at = t
            self.stop.wait(max(0.0, 0.1 - (time.time() - t)))
        self.role_thread.join(2)


def watcher_app(path):
    """The application_name of pgwatchdog's connection on PATH (the node locator finds it)."""
    return f"pgwd_{path}"


def poller_app(path):
    return f"poll_{path}"


class NodeLocator(threading.Thread):
    """Every 250 ms, which clients of the watchers and pollers a node serves (pg_stat_activity by
    application_name): behind HAProxy the node a connection is on is HAProxy's choice, and after
    a switchover HAProxy keeps routing a port to the old node until its checks mark it down, so
    the truth for a connection there is the role of the node it is on, not the port's intent.
    One thread per node: a stopped node blocks only its own."""

    def __init__(self, env, node, stop):
        super().__init__(daemon=True)
        self.port, self.stop = env[f"HA_NODE{node}_PG_PORT"], stop
        self.seen = []  # (t, {application_name, ...})

    def run(self):
        conn = None
        while not self.stop.is_set():
            t = time.time()
            try:
                if conn is None:
                    conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname="postgres",
                                            user="postgres", application_name="ha_matrix_locator",
                                            connect_timeout=1)
                    conn.autocommit = True
                cur = conn.cursor()
                cur.execute("SELECT application_name FROM pg_stat_activity "
                            "WHERE application_name LIKE 'pgwd\\_%' OR application_name LIKE 'poll\\_%'")
                self.seen.append((t, {row[0] for row in cur.fetchall()}))
            except Exception:  # down, restarting or stopped: nothing known of it meanwhile
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                    conn = None
            self.stop.wait(max(0.0, 0.25 - (time.time() - t)))
        if conn is not None:
            conn.close()


def node_of(locators, app, t):
    """The node whose latest look at or before t saw APP, the latest such look winning; None if
    no node's latest look saw it (between connections, or nothing known)."""
    best = None
    for node, locator in (locators or {}).items():
        latest = next(((ts, names) for ts, names in reversed(locator.seen) if ts <= t), None)
        if latest is not None and app in latest[1] and (best is None or latest[0] > best[0]):
            best = (latest[0], node)
    return None if best is None else best[1]


def truth_role(truth, t, path, nodes, app=None, locators=None):
    """Patroni's answer for the server behind PATH at time t ('primary'/'replica'/None). Through
    HAProxy: the role of the node the connection named APP is on, where the locators saw it;
    else the port's intent, as through PgBouncer (whose server is HAProxy's primary port's)."""
    node = nodes.get(path)
    if path.startswith("haproxy_") and app is not None:
        node = node_of(locators, app, t)
    if node is None:
        if path in ("haproxy_primary", "pgbouncer_session", "pgbouncer_transaction"):
            return "primary"
        if path == "haproxy_replica":
            return "replica"
        return None
    last = None
    for tt, roles in truth:
        if tt > t:
            break
        if roles[node] is not None:
            last = roles[node]
    return last


def analyse_path(path, sampler, poller, t_fault, t_event, nodes, locators):
    samples = [(t, m.get(path)) for t, m in sampler.samples if m is not None and m.get(path)]
    base = [m for t, m in samples if t < t_fault]
    after = [(t, m) for t, m in samples if t >= t_fault]
    res = {"path": path}
    if not base or not after:
        res["error"] = "no /metrics samples"
        return res
    d0 = base[-1]["disconnects"]
    causes0 = base[-1]["causes"]
    # pgwatchdog: detection = first sample with a new disconnect or up 0.
    det = next((t for t, m in after if m["disconnects"] > d0 or m["up"] == 0), None)
    res["pgwd_detect_s"] = None if det is None else round(det - t_event, 2)
    last_bad = None
    for i, (t, m) in enumerate(after):
        prev_d = after[i - 1][1]["disconnects"] if i else d0
        if m["up"] == 0 or m["disconnects"] > prev_d:
            last_bad = i
    rec = None
    if det is not None and last_bad is not None:
        nxt = next(((t, m) for t, m in after[last_bad:] if m["up"] == 1), None)
        rec = None if nxt is None else nxt[0]
    res["pgwd_recover_s"] = None if rec is None else round(rec - t_event, 2)
    last = after[-1][1]
    res["pgwd_causes"] = {c: int(v - causes0.get(c, 0)) for c, v in last["causes"].items()
                          if v - causes0.get(c, 0) > 0}
    # Attempts started beside one still on its way (a proxy holding it, a lost SYN).
    res["pgwd_hedges"] = int(last.get("hedges", 0) - base[0].get("hedges", 0))
    dur = samples[-1][0] - samples[0][0]
    res["pgwd_round_trips_per_hour"] = round((last["probes"] - base[0]["probes"]) / dur * 3600, 1) \
        if dur > 0 else None
    # poller
    pres = [r for r in poller.results if r[0] >= t_fault]
    fail = next((r for r in pres if not r[1]), None)
    res["poll_detect_s"] = None if fail is None else round(fail[0] - t_event, 2)
    res["poll_error"] = None if fail is None else fail[3]
    prec = None
    if fail is not None:
        last_fail = max(i for i, r in enumerate(pres) if not r[1])
        ok = next((r for r in pres[last_fail:] if r[1]), None)
        prec = None if ok is None else ok[0]
    res["poll_recover_s"] = None if prec is None else round(prec - t_event, 2)
    pdur = (poller.results[-1][0] - poller.results[0][0]) if len(poller.results) > 1 else 0
    res["poll_round_trips_per_hour"] = round(poller.round_trips / pdur * 3600, 1) if pdur > 0 else None
    # roles: at the end, and time spent wrong after the fault (while the truth is known)
    t_last = after[-1][0]
    truth_end = truth_role(sampler.truth, t_last, path, nodes, watcher_app(path), locators)
    res["truth_role_end"] = truth_end
    res["pgwd_role_end"] = ("replica" if last["hs"] == 1 else "primary") if last["up"] == 1 else None
    ok_polls = [r for r in pres if r[1]]
    res["poll_role_end"] = (("replica" if ok_polls[-1][2] else "primary") if ok_polls else None)
    wrong = 0.0
    for i in range(1, len(after)):
        t, m = after[i]
        tr = truth_role(sampler.truth, t, path, nodes, watcher_app(path), locators)
        if tr is None or m["up"] != 1:
            continue
        if ("replica" if m["hs"] == 1 else "primary") != tr:
            wrong += t - after[i - 1][0]
    res["pgwd_role_wrong_s"] = round(wrong, 1)
    pwrong = 0.0
    for i in range(1, len(ok_polls)):
        t = ok_polls[i][0]
        tr = truth_role(sampler.truth, t, path, nodes, poller_app(path), locators)
        if tr is not None and ("replica" if ok_polls[i][2] else "primary") != tr:
            pwrong += t - ok_polls[i - 1][0]
    res["poll_role_wrong_s"] = round(pwrong, 1)
    return res


def check(scenario, res, signalled, carriers, daemon_waited=0.0):
    """The issue's targets as assertions; returns a list of misses (strings). DAEMON_WAITED: the
    seconds the daemon's threads waited for a CPU over the scenario, the machine's share, added
    to the recovery's slack (a fresh-clone run beside four others, at load 20, recovered 0.07 s
    past it through PgBouncer)."""
    misses = []
    p = res["path"]
    if "error" in res:
        return [f"{p}: {res['error']}"]
    det, pdet = res["pgwd_detect_s"], res["poll_detect_s"]
    if pdet is not None and det is None:
        misses.append(f"{p}: missed: the poller saw a failure at +{pdet} s ({res['poll_error']}), "
                      "pgwatchdog counted no disconnect")
    if p in carriers:
        bound = SIGNALLED_BOUND if signalled else HEARTBEAT_ASSUMED + PROBE_TIMEOUT
        if det is None:
            misses.append(f"{p}: not detected at all (bound {bound} s after the event)")
        elif det > bound:
            misses.append(f"{p}: detected after {det} s, bound {bound} s")
        if det is not None and not EXPECTED_CAUSES[scenario] & set(res["pgwd_causes"]):
            misses.append(f"{p}: cause {', '.join(sorted(res['pgwd_causes'])) or 'none'}, expected "
                          f"{' or '.join(sorted(EXPECTED_CAUSES[scenario]))}")
    rec, prec = res["pgwd_recover_s"], res["poll_recover_s"]
    if prec is not None and rec is not None and rec > prec + RECOVERY_SLACK + daemon_waited:
        misses.append(f"{p}: recovered at +{rec} s, the poller at +{prec} s (slack {RECOVERY_SLACK} s "
                      f"+ {daemon_waited:.2f} s the daemon waited for a CPU)")
    if prec is not None and rec is None and det is not None:
        misses.append(f"{p}: pgwatchdog not up again by the end (the poller was at +{prec} s)")
    if res["truth_role_end"] is not None and res["pgwd_role_end"] != res["truth_role_end"]:
        misses.append(f"{p}: role at the end {res['pgwd_role_end']}, Patroni says {res['truth_role_end']}")
    if res["pgwd_role_wrong_s"] > HEARTBEAT_ASSUMED:
        misses.append(f"{p}: role wrong for {res['pgwd_role_wrong_s']} s (bound {HEARTBEAT_ASSUMED} s)")
    return misses


def run_scenario(args, env, scenario, paths):
    fault_args, signalled, carriers = SCENARIOS[scenario]
    wait_healthy(env, 120)
    lead = leader(env)
    if lead is None:
        die("no leader after wait-healthy")
    other = 3 - lead
    ports = {
        "direct_primary": env[f"HA_NODE{lead}_PG_PORT"],
        "direct_replica": env[f"HA_NODE{other}_PG_PORT"],
        "haproxy_primary": env["HA_HAPROXY_PRIMARY_PORT"],
        "haproxy_replica": env["HA_HAPROXY_REPLICA_PORT"],
        "pgbouncer_session": env["HA_PGBOUNCER_SESSION_PORT"],
        "pgbouncer_transaction": env["HA_PGBOUNCER_TRANSACTION_PORT"],
    }
    nodes = {"direct_primary": lead, "direct_replica": other}
    workdir = os.path.join(env["HA_ROOT"], f"matrix-{scenario}")
    os.makedirs(workdir, exist_ok=True)
    listen = f"127.0.0.1:{free_port()}"
    cfg = os.path.join(workdir, "pgwatchdog.yaml")
    with open(cfg, "w") as f:
        # The daemon's defaults: nothing but where to listen, what to watch and, for the PgBouncer
        # and HAProxy paths, what is in front of the server (`pooler`, `proxied`: facts about
        # the target, not tunings; `proxied` changes nothing in the watching).
        f.write(f'listen: "{listen}"\ntargets:\n')
        for p in paths:
            f.write(f'  - name: {p}\n    dsn: "host=127.0.0.1 port={ports[p]} dbname=postgres user=postgres '
                    f'application_name={watcher_app(p)}"\n')
            if p.startswith("pgbouncer_"):
                f.write('    pooler: pgbouncer\n')
            if p.startswith("haproxy_"):
                f.write('    proxied: true\n')
            if p == "pgbouncer_session" and args.bind_session_pool:
                # LISTEN after every connect is a statement: PgBouncer links the client to a
                # server for the session, so the server's FATAL/EOF reach the watchdog.
                f.write('    listen_channels: [pgwatchdog_bind]\n')
    daemon = Daemon(args.daemon, cfg, os.path.join(workdir, "pgwatchdog.log"))
    stop = threading.Event()
    pollers = {p: Poller(p, ports[p], stop) for p in paths}
    locators = {n: NodeLocator(env, n, stop) for n in (1, 2)}
    sampler = Sampler(env, f"http://{listen}/metrics", env[f"HA_NODE{lead}_DATA"],
                      postmaster_pid(env, lead), stop)
    result = {"scenario": scenario, "fault": fault_args, "leader_before": f"node{lead}", "paths": []}
    daemon_wait_start = 0.0
    try:
        daemon.wait_up(f"http://{listen}/metrics", paths, die)
        daemon_wait_start = daemon.cpu_wait_s()
        for p in pollers.values():
            p.start()
        sampler.start()
        for locator in locators.values():
            locator.start()
        # A baseline of a few polls: every path answering before the fault.
        time.sleep(3)
        kv = run_fault(env, fault_args, die)
        t_fault, t_fault_end = kv["FAULT_START"], kv["FAULT_END"]
        time.sleep(args.observe)
    finally:
        stop.set()
        daemon_waited = daemon.cpu_wait_s() - daemon_wait_start
        daemon.stop()
        for p in pollers.values():
            if p.is_alive():
                p.join(POLL_TIMEOUT + 2)
        if sampler.is_alive():
            sampler.join(3)
        for locator in locators.values():
            locator.join(3)
    # The event the clients can see: for a switchover or restart, the moment the old primary's
    # postmaster began to shut down (Patroni checkpoints first, 1-3 s after the request);
    # otherwise the fault's start. Sampled every 100 ms, so a detection may show up to -0.1 s.
    t_event = t_fault
    if scenario in ("switchover", "restart") and sampler.stopping_at is not None:
        t_event = sampler.stopping_at
    result.update({"fault_start": t_fault, "fault_end": t_fault_end, "event": t_event,
                   "event_after_fault_s": round(t_event - t_fault, 2),
                   "fault_seconds": round(t_fault_end - t_fault, 2),
                   "daemon_cpu_wait_s": round(daemon_waited, 2)})
    misses = []
    for p in paths:
        res = analyse_path(p, sampler, pollers[p], t_fault, t_event, nodes, locators)
        result["paths"].append(res)
        if args.check:
            misses += check(scenario, res, signalled, carriers, daemon_waited)
    result["misses"] = misses
    return result


def fmt(v, unit=""):
    return "—" if v is None else f"{v}{unit}"


def table(results):
    lines = ["| scenario | path | detect pgwd / poller | recover pgwd / poller | pgwd causes | role end pgwd / poller / Patroni | role wrong pgwd / poller | round trips/h pgwd / poller |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for p in r["paths"]:
            if "error" in p:
                lines.append(f"| {r['scenario']} | {p['path']} | {p['error']} | | | | | |")
                continue
            causes = ", ".join(f"{c} {n}" for c, n in sorted(p["pgwd_causes"].items())) or "—"
            lines.append(
                f"| {r['scenario']} | {p['path']} | {fmt(p['pgwd_detect_s'], ' s')} / {fmt(p['poll_detect_s'], ' s')} "
                f"| {fmt(p['pgwd_recover_s'], ' s')} / {fmt(p['poll_recover_s'], ' s')} | {causes} "
                f"| {fmt(p['pgwd_role_end'])} / {fmt(p['poll_role_end'])} / {fmt(p['truth_role_end'])} "
                f"| {p['pgwd_role_wrong_s']} s / {p['poll_role_wrong_s']} s "
                f"| {fmt(p['pgwd_round_trips_per_hour'])} / {fmt(p['poll_round_trips_per_hour'])} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.environ.get("HA_ROOT"), help="HA_ROOT of a running stack")
    ap.add_argument("--daemon", required=True, help="the pgwatchdog binary")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--observe", type=float, default=30.0, help="seconds to watch after the fault ends")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--check", action="store_true", help="assert the targets; exit 1 on a miss")
    ap.add_argument("--bind-session-pool", action="store_true",
                    help="give the pgbouncer_session target listen_channels: [pgwatchdog_bind], so "
                         "that it is linked to a server from its first connect (a prototype of a "
                         "pooled-target binding with today's options)")
    args = ap.parse_args()
    if not args.root:
        die("--root (or HA_ROOT) is required: run under `ha-stack run --` or pass the stack's root")
    if not os.access(args.daemon, os.X_OK):
        die(f"--daemon {args.daemon} is not an executable file (build target pgwatchdog-daemon)")
    env = ha_stack.load_env(args.root, die)
    scenarios = [s for s in args.scenarios.split(",") if s]
    paths = [p for p in args.paths.split(",") if p]
    for s in scenarios:
        if s not in SCENARIOS:
            die(f"unknown scenario '{s}' (known: {', '.join(SCENARIOS)})")
    for p in paths:
        if p not in PATHS:
            die(f"unknown path '{p}' (known: {', '.join(PATHS)})")
    results = []
    t0 = time.time()
    for s in scenarios:
        t = time.time()
        print(f"ha_matrix: scenario {s} ...", file=sys.stderr, flush=True)
        r = run_scenario(args, env, s, paths)
        r["seconds"] = round(time.time() - t, 1)
        results.append(r)
        print(f"ha_matrix: scenario {s} done in {r['seconds']} s (event +{r['event_after_fault_s']} s "
              f"after the fault started)", file=sys.stderr, flush=True)
    print(table(results))
    doc = {"bind_session_pool": args.bind_session_pool, "stack_startup_seconds": env.get("HA_STARTUP_SECONDS"), "total_seconds": round(time.time() - t0, 1),
           "assumed_heartbeat_s": HEARTBEAT_ASSUMED, "scenarios": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    if args.check:
        misses = [f"{r['scenario']}: {m}" for r in results for m in r["misses"]]
        if misses:
            print("\nha_matrix: MISSED TARGETS:\n  " + "\n  ".join(misses), file=sys.stderr)
            sys.exit(1)
        print("ha_matrix: every target met", file=sys.stderr)


if __name__ == "__main__":
    main()
