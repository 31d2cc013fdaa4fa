#!/usr/bin/python3
"""Clients through HAProxy routed by pgwatchdog's endpoints, next to HAProxy routed by Patroni.

Runs against a stack of tests/ha_stack/ha-stack (its HA_ROOT), which has an HAProxy checking
Patroni's REST API in Patroni's documented configuration (`inter 3s fall 3 rise 2`). Beside it
this script starts:
  * the pgwatchdog daemon, with one plain target per node (node1, node2: direct DSNs, named as
    the HAProxy servers, since `uri-lf /targets/%[srv_name]/primary` asks by server name and a
    `patroni:` member's name CLUSTER/MEMBER has a '/', which HAProxy refuses in a server name)
    and the heartbeat docs/operations.md recommends for a routing pgwatchdog (1 s, --heartbeat);
  * a second HAProxy, its own process, on deploy/haproxy/haproxy.cfg itself with only the
    addresses and ports swapped for the stack's (`inter 1s downinter 500ms fastinter 200ms
    fall 2 rise 1`, checks GET /targets/<server>/primary on pgwatchdog).
Then, per fault run:
  1. waits until the stack is healthy and both HAProxys route the primary port to the leader;
  2. clients on each HAProxy's primary port, every 100 ms: `new` opens a new connection for each
     sample, `kept` keeps one (reconnecting at the next tick after a failure); each sample runs
     `SELECT pg_is_in_recovery(), inet_server_port()` with a 2 s client-side deadline and records
     connected or not, which node, its role;
  3. every 50 ms: pgwatchdog's /targets/nodeN/primary, and each node's PostgreSQL directly
     (pg_is_in_recovery(): the moment of the promotion itself); every 100 ms both HAProxys'
     stats (when each marked a server UP or DOWN in the primary backend);
  4. injects the fault (tests/ha_stack/ha-fault switchover, kill9 or crash), observes --observe s
     (+ 20 s for crash: Patroni's ttl) and, after a crash, starts the crashed node's Patroni again;
  5. reports per HAProxy and client: time on a standby and time with no server (sum of the
     sample intervals, from the fault's start); the moment pgwatchdog saw the promotion (the
     new primary's /targets/NAME/primary turning 200 for good); the first sample routed to the
     new primary from when on every sample is (minus that moment: target <= 1 s); samples
     routed to a standby after that moment (target: none).

"The promotion": for a switchover and a crash (kill -9 of the primary's Patroni and postmaster:
the other node is promoted once the leader key expires), the other node's; for kill9 (only the
postmaster: Patroni restarts it in place and promotes it again), the same node's return as a
primary.

--check asserts the two targets for the pgwatchdog-routed HAProxy (new connections): no sample
on a standby after pgwatchdog saw the promotion, and routed to the new primary within 1 s of it.

Usage: ha_routing.py --root HA_ROOT --daemon PATH [--faults LIST] [--runs N] [--heartbeat D]
                     [--observe S] [--json FILE] [--check] [--samples]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import psycopg2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from http_helpers import free_port, http_get  # noqa: E402
from ha_stack import (STACK_DIR, Daemon, leader, load_env, pg_wait, run_fault,  # noqa: E402
                      wait_healthy)

HERE = os.path.dirname(os.path.abspath(__file__))
HAPROXY_CFG = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "haproxy", "haproxy.cfg"))
FAULTS = {"switchover": ["switchover"], "kill9": ["kill9"], "crash": ["crash"]}
# Seconds to observe beyond --observe: a crashed node's leader key expires only after Patroni's
# ttl (20 s on the stack), then the other node is promoted.
EXTRA_OBSERVE = {"crash": 20.0}
INTERVAL = 0.1
DEADLINE = 2.0
ROUTED_BOUND = 1.0


def die(msg):
    sys.exit("ha_routing: " + msg)


def pg_connect(port, app, deadline):
    conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres",
                            application_name=app, connect_timeout=int(DEADLINE), async_=1)
    pg_wait(conn, deadline)
    return conn


def pg_query(conn, sql, deadline):
    cur = conn.cursor()
    cur.execute(sql)
    pg_wait(conn, deadline)
    return cur.fetchone()


def close(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass


class Client(threading.Thread):
    """Samples on PORT: (t_start, t_end, ok, server port, in_recovery, error).

    `new`: a new connection started every INTERVAL, each in a thread of its own, so that one
    waiting in HAProxy's queue (no server UP: it waits up to `timeout connect`) does not hold up
    the next: the samples are what a client connecting at that moment gets.
    `kept`: one connection, a query every INTERVAL; after a failure a new connection at the next
    tick (one attempt at a time, as an application's connection does)."""

    def __init__(self, name, port, kept, stop):
        super().__init__(daemon=True)
        self.name_, self.port, self.kept, self.stop = name, port, kept, stop
        self.samples = []
        self.lock = threading.Lock()
        self.attempts = []

    def sample(self, conn, t0):
        """One sample on CONN (None: a new connection); returns the connection to keep, or None."""
        deadline = t0 + DEADLINE
        try:
            if conn is None:
                conn = pg_connect(self.port, "route_" + self.name_, deadline)
            rec, port = pg_query(conn, "SELECT pg_is_in_recovery(), inet_server_port()", deadline)
            s = (t0, time.time(), True, port, rec, None)
        except Exception as e:
            msg = str(e).strip().splitlines()[0][:100] if str(e).strip() else type(e).__name__
            s = (t0, time.time(), False, None, None, msg)
            close(conn)
            conn = None
        with self.lock:
            self.samples.append(s)
        if not self.kept:
            close(conn)
            conn = None
        return conn

    def run(self):
        conn = None
        while not self.stop.is_set():
            t0 = time.time()
            if self.kept:
                conn = self.sample(conn, t0)
            else:
                a = threading.Thread(target=self.sample, args=(None, t0), daemon=True)
                a.start()
                self.attempts.append(a)
            self.stop.wait(max(0.0, INTERVAL - (time.time() - t0)))
        close(conn)
        for a in self.attempts:
            a.join(DEADLINE + 1)
        with self.lock:
            self.samples.sort()


class Direct(threading.Thread):
    """Every 50 ms, node N's PostgreSQL directly: (t, in_recovery or None)."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.samples = []

    def run(self):
        conn = None
        while not self.stop.is_set():
            t0 = time.time()
            try:
                if conn is None:
                    conn = pg_connect(self.port, "route_direct", t0 + 1)
                rec, = pg_query(conn, "SELECT pg_is_in_recovery()", t0 + 1)
                self.samples.append((t0, rec))
            except Exception:
                self.samples.append((t0, None))
                close(conn)
                conn = None
            self.stop.wait(max(0.0, 0.05 - (time.time() - t0)))
        close(conn)


class Endpoints(threading.Thread):
    """Every 50 ms, pgwatchdog's /targets/nodeN/primary: (t, {node: status})."""

    def __init__(self, base, stop):
        super().__init__(daemon=True)
        self.base, self.stop = base, stop
        self.samples = []

    def run(self):
        while not self.stop.is_set():
            t0 = time.time()
            self.samples.append((t0, {n: http_get(f"{self.base}/targets/node{n}/primary", 0.5)[0]
                                      for n in (1, 2)}))
            self.stop.wait(max(0.0, 0.05 - (time.time() - t0)))


def haproxy_primary_status(stats_port):
    """{server: 'UP'/'DOWN'/...} of the `primary` backend, from HAProxy's stats CSV; {} if none."""
    code, body = http_get(f"http://127.0.0.1:{stats_port}/;csv", 0.5)
    out = {}
    if code == 200:
        for line in body.splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "primary" and f[1].startswith("node"):
                out[f[1]] = f[17].split(" ")[0]
    return out


class Stats(threading.Thread):
    """Every 100 ms, each HAProxy's view of the primary backend: (t, {haproxy: {server: status}})."""

    def __init__(self, ports, stop):
        super().__init__(daemon=True)
        self.ports, self.stop = ports, stop
        self.samples = []

    def run(self):
        while not self.stop.is_set():
            t0 = time.time()
            self.samples.append((t0, {h: haproxy_primary_status(p) for h, p in self.ports.items()}))
            self.stop.wait(max(0.0, 0.1 - (time.time() - t0)))


def write_haproxy_config(path, env, listen_port, primary_port, replica_port, stats_port):
    """deploy/haproxy/haproxy.cfg with its addresses and ports swapped for the stack's, and a stats
    page (for the HAProxy-side timing). Every replacement must hit, or the file changed shape."""
    with open(HAPROXY_CFG) as f:
        cfg = f.read()
    for old, new, count in [
            ("bind *:5000", f"bind 127.0.0.1:{primary_port}", 1),
            ("bind *:5001", f"bind 127.0.0.1:{replica_port}", 1),
            ("addr 10.0.0.5 port 10432", f"addr 127.0.0.1 port {listen_port}", 2),
            ("10.0.0.11:5432", f"127.0.0.1:{env['HA_NODE1_PG_PORT']}", 2),
            ("10.0.0.12:5432", f"127.0.0.1:{env['HA_NODE2_PG_PORT']}", 2)]:
        if cfg.count(old) != count:
            die(f"{HAPROXY_CFG}: expected '{old}' {count} times, found {cfg.count(old)}")
        cfg = cfg.replace(old, new)
    # Logging only (not in the documented file): every connection with its timers and termination
    # state, and every check's verdict, in ROOT/routing/haproxy.log.
    if cfg.count("global\n") != 1 or cfg.count("    mode tcp\n") != 1:
        die(f"{HAPROXY_CFG}: expected one 'global' and one 'mode tcp' line")
    cfg = cfg.replace("global\n", "global\n    log stdout format raw local0 info\n")
    cfg = cfg.replace("    mode tcp\n", "    mode tcp\n    log global\n    option tcplog\n    option log-health-checks\n")
    cfg += f"\nlisten stats\n    mode http\n    bind 127.0.0.1:{stats_port}\n    stats enable\n    stats uri /\n"
    with open(path, "w") as f:
        f.write(cfg)


def write_daemon_config(path, env, listen, heartbeat):
    with open(path, "w") as f:
        f.write(f'listen: "{listen}"\ntargets:\n')
        for n in (1, 2):
            f.write(f'  - name: node{n}\n'
                    f'    dsn: "host=127.0.0.1 port={env[f"HA_NODE{n}_PG_PORT"]} dbname=postgres '
                    f'user=postgres application_name=pgwd_node{n}"\n')
            if heartbeat:
                f.write(f'    heartbeat: {heartbeat}\n')


def wait_routed(ports, lead_port, seconds=60):
    """Until a new connection through every one of PORTS lands on LEAD_PORT as a primary."""
    deadline = time.time() + seconds
    pending = set(ports)
    while pending:
        for p in list(pending):
            conn = None
            try:
                conn = pg_connect(p, "route_wait", time.time() + DEADLINE)
                rec, port = pg_query(conn, "SELECT pg_is_in_recovery(), inet_server_port()",
                                     time.time() + DEADLINE)
                if not rec and str(port) == str(lead_port):
                    pending.discard(p)
            except Exception:
                pass
            finally:
                close(conn)
        if pending and time.time() > deadline:
            die(f"HAProxy ports {sorted(pending)} not routed to the leader after {seconds} s")
        if pending:
            time.sleep(0.2)


def rising_edge(samples, key, after, good):
    """The time of the last transition to GOOD(value) of SAMPLES[(t, {key: value})] at or after
    AFTER (the first good sample of the final good streak), or None if the last is not good."""
    edge = None
    prev_good = None
    for t, vals in samples:
        if t < after:
            prev_good = good(vals.get(key))
            continue
        g = good(vals.get(key))
        if g and prev_good is not True:
            edge = t
        if not g:
            edge = None
        prev_good = g
    return edge


def analyse_client(samples, t_fault, t_seen, new_port, t_stop):
    after = [s for s in samples if s[0] >= t_fault]
    res = {"samples": len(after)}
    standby = none = 0.0
    first_standby = last_standby = first_none = last_none = None
    for i, (t0, t1, ok, port, rec, err) in enumerate(after):
        dur = (after[i + 1][0] if i + 1 < len(after) else t_stop) - t0
        if ok and rec:
            standby += dur
            first_standby = first_standby if first_standby is not None else t0
            last_standby = t0
        elif not ok:
            none += dur
            first_none = first_none if first_none is not None else t0
            last_none = t1
    rel = (lambda t: None if t is None else round(t - t_fault, 2))
    res.update({"standby_s": round(standby, 2), "no_server_s": round(none, 2),
                "first_standby": rel(first_standby), "last_standby": rel(last_standby),
                "first_no_server": rel(first_none), "last_no_server": rel(last_none)})
    # Routed to the new primary for good: the start of the final streak of samples on it.
    routed = None
    for t0, t1, ok, port, rec, err in after:
        good = ok and not rec and str(port) == str(new_port)
        if good and routed is None:
            routed = t0
        elif not good:
            routed = None
    res["routed"] = rel(routed)
    if t_seen is not None:
        first_new = next((s[0] for s in after if s[0] >= t_seen and s[2] and not s[4]
                          and str(s[3]) == str(new_port)), None)
        res["first_routed_minus_seen"] = None if first_new is None else round(first_new - t_seen, 2)
    errors = {}
    for s in after:
        if not s[2]:
            errors[s[5]] = errors.get(s[5], 0) + 1
    res["errors"] = errors
    if t_seen is not None:
        res["routed_minus_seen"] = None if routed is None else round(routed - t_seen, 2)
        res["standby_after_seen"] = sum(1 for s in after if s[0] >= t_seen and s[2] and s[4])
        res["no_server_after_seen"] = sum(1 for s in after if s[0] >= t_seen and not s[2])
        errs = sorted({s[5] for s in after if s[0] >= t_seen and not s[2]})
        res["errors_after_seen"] = errs[:3]
    return res


def stats_edge(stats, haproxy, server, after):
    return rising_edge([(t, v.get(haproxy, {})) for t, v in stats.samples], server, after,
                       lambda s: s == "UP")


def run_fault_once(args, env, fault, haproxies, listen, run_index):
    wait_healthy(env, 120)
    lead = leader(env)
    if lead is None:
        die("no leader after wait-healthy")
    wait_routed([h["port"] for h in haproxies.values()], env[f"HA_NODE{lead}_PG_PORT"])
    stop = threading.Event()
    clients = {(h, kind): Client(f"{h}_{kind}", haproxies[h]["port"], kind == "kept", stop)
               for h in haproxies for kind in ("new", "kept")}
    directs = {n: Direct(env[f"HA_NODE{n}_PG_PORT"], stop) for n in (1, 2)}
    endpoints = Endpoints(f"http://{listen}", stop)
    stats = Stats({h: v["stats"] for h, v in haproxies.items()}, stop)
    threads = list(clients.values()) + list(directs.values()) + [endpoints, stats]
    try:
        for t in threads:
            t.start()
        time.sleep(2)  # a baseline: every client routed to the leader before the fault
        kv = run_fault(env, FAULTS[fault], die)
        time.sleep(args.observe + EXTRA_OBSERVE.get(fault, 0.0))
    finally:
        stop.set()
        for t in threads:
            t.join(DEADLINE + 2)
    t_stop = time.time()
    t_fault = kv["FAULT_START"]
    new = leader(env)
    if fault == "crash":
        # Nothing restarts a crashed node: bring its Patroni back (pg_rewind, then a replica).
        subprocess.run([os.path.join(STACK_DIR, "ha-stack"), "start-node", env["HA_ROOT"], str(lead)],
                       check=True, stdout=subprocess.DEVNULL)
    if new is None:
        wait_healthy(env, 60)
        new = leader(env)
    new_port = env[f"HA_NODE{new}_PG_PORT"]
    rel = (lambda t: None if t is None else round(t - t_fault, 2))
    # The promotion itself (PostgreSQL leaving recovery, 50 ms resolution), and pgwatchdog seeing it.
    t_promoted = rising_edge([(t, {"r": r}) for t, r in directs[new].samples], "r", t_fault,
                             lambda r: r is False)
    t_seen = rising_edge(endpoints.samples, new, t_fault, lambda c: c == 200)
    result = {"fault": fault, "run": run_index, "old_primary": f"node{lead}", "new_primary": f"node{new}",
              "fault_seconds": round(kv["FAULT_END"] - t_fault, 2),
              "promoted": rel(t_promoted), "pgwd_seen": rel(t_seen),
              "pgwd_seen_after_promotion": None if None in (t_seen, t_promoted) else round(t_seen - t_promoted, 2),
              "haproxy": {}}
    for h in haproxies:
        result["haproxy"][h] = {"marked_up": rel(stats_edge(stats, h, f"node{new}", t_fault))}
        for kind in ("new", "kept"):
            result["haproxy"][h][kind] = analyse_client(clients[(h, kind)].samples, t_fault, t_seen,
                                                        new_port, t_stop)
            if args.samples:
                result["haproxy"][h][kind]["raw"] = [
                    (round(s[0] - t_fault, 3), round(s[1] - t_fault, 3), s[2], s[3], s[4], s[5])
                    for s in clients[(h, kind)].samples if s[0] >= t_fault - 1]
    if args.samples:
        result["pgwd_endpoints_raw"] = [(round(t - t_fault, 3), v) for t, v in endpoints.samples if t >= t_fault - 1]
        result["haproxy_stats_raw"] = [(round(t - t_fault, 3), v) for t, v in stats.samples if t >= t_fault - 1]
    return result


def misses_of(r):
    out = []
    if r["pgwd_seen"] is None:
        return [f"{r['fault']} run {r['run']}: pgwatchdog never saw node {r['new_primary']} as primary"]
    c = r["haproxy"]["pgwatchdog"]["new"]
    if c["standby_after_seen"]:
        out.append(f"{r['fault']} run {r['run']}: {c['standby_after_seen']} new connections through the "
                   "pgwatchdog-routed HAProxy landed on a standby after pgwatchdog saw the promotion")
    if c["first_routed_minus_seen"] is None or c["first_routed_minus_seen"] > ROUTED_BOUND:
        out.append(f"{r['fault']} run {r['run']}: new primary first routed {c['first_routed_minus_seen']} s "
                   f"after pgwatchdog saw it (bound {ROUTED_BOUND} s)")
    return out


def fmt(v, unit=" s"):
    return "—" if v is None else f"{v}{unit}"


def table(results):
    lines = ["| fault | run | HAProxy | client | on a standby | no server | routed to new primary | "
             "promoted / pgwd saw it | routed − pgwd saw: first / for good | on a standby after pgwd saw |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for h, hv in r["haproxy"].items():
            for kind in ("new", "kept"):
                c = hv[kind]
                lines.append(
                    f"| {r['fault']} | {r['run']} | {h} | {kind} | {fmt(c['standby_s'])} | {fmt(c['no_server_s'])} "
                    f"| +{fmt(c['routed'])} | +{fmt(r['promoted'])} / +{fmt(r['pgwd_seen'])} "
                    f"| {fmt(c.get('first_routed_minus_seen'))} / {fmt(c.get('routed_minus_seen'))} "
                    f"| {c.get('standby_after_seen', '—')} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.environ.get("HA_ROOT"), help="HA_ROOT of a running stack")
    ap.add_argument("--daemon", required=True, help="the pgwatchdog binary")
    ap.add_argument("--faults", default="switchover,kill9,crash")
    ap.add_argument("--runs", type=int, default=1, help="runs of each fault")
    ap.add_argument("--heartbeat", default="1s",
                    help="the targets' heartbeat (default 1s, as docs/operations.md recommends for "
                         "a routing pgwatchdog; '' for the daemon's default, 5s)")
    ap.add_argument("--observe", type=float, default=15.0, help="seconds to watch after the fault ends")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--check", action="store_true", help="assert the targets; exit 1 on a miss")
    ap.add_argument("--samples", action="store_true", help="put every sample in the JSON too")
    args = ap.parse_args()
    if not args.root:
        die("--root (or HA_ROOT) is required: run under `ha-stack run --` or pass the stack's root")
    if not os.access(args.daemon, os.X_OK):
        die(f"--daemon {args.daemon} is not an executable file (build target pgwatchdog-daemon)")
    env = load_env(args.root, die)
    faults = [f for f in args.faults.split(",") if f]
    for f in faults:
        if f not in FAULTS:
            die(f"unknown fault '{f}' (known: {', '.join(FAULTS)})")
    workdir = os.path.join(env["HA_ROOT"], "routing")
    os.makedirs(workdir, exist_ok=True)
    listen = f"127.0.0.1:{free_port()}"
    cfg = os.path.join(workdir, "pgwatchdog.yaml")
    write_daemon_config(cfg, env, listen, args.heartbeat)
    hap = {"port": free_port(), "replica": free_port(), "stats": free_port()}
    hap_cfg = os.path.join(workdir, "haproxy.cfg")
    write_haproxy_config(hap_cfg, env, listen.split(":")[1], hap["port"], hap["replica"], hap["stats"])
    subprocess.run(["haproxy", "-c", "-q", "-f", hap_cfg], check=True)
    haproxies = {"patroni": {"port": env["HA_HAPROXY_PRIMARY_PORT"], "stats": env["HA_HAPROXY_STATS_PORT"]},
                 "pgwatchdog": hap}
    daemon = Daemon(args.daemon, cfg, os.path.join(workdir, "pgwatchdog.log"))
    hap_log = open(os.path.join(workdir, "haproxy.log"), "w")
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", hap_cfg], stdout=hap_log, stderr=subprocess.STDOUT)
    results = []
    t0 = time.time()
    try:
        daemon.wait_up(f"http://{listen}/metrics", ["node1", "node2"], die)
        for i in range(1, args.runs + 1):
            for f in faults:
                t = time.time()
                print(f"ha_routing: {f} run {i} ...", file=sys.stderr, flush=True)
                r = run_fault_once(args, env, f, haproxies, listen, i)
                r["seconds"] = round(time.time() - t, 1)
                results.append(r)
                print(f"ha_routing: {f} run {i}: {r['old_primary']} -> {r['new_primary']}, promoted "
                      f"+{r['promoted']} s, pgwatchdog saw it +{r['pgwd_seen']} s", file=sys.stderr, flush=True)
    finally:
        haproxy.terminate()
        haproxy.wait(10)
        hap_log.close()
        daemon.stop()
    print(table(results))
    doc = {"heartbeat": args.heartbeat or "default (5s)", "haproxy_cfg": os.path.relpath(HAPROXY_CFG, os.path.join(HERE, "..", "..")),
           "total_seconds": round(time.time() - t0, 1), "runs": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    if args.check:
        misses = [m for r in results for m in misses_of(r)]
        if misses:
            print("\nha_routing: MISSED TARGETS:\n  " + "\n  ".join(misses), file=sys.stderr)
            sys.exit(1)
        print("ha_routing: every target met", file=sys.stderr)


if __name__ == "__main__":
    main()
