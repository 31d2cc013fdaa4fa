"""What the Python harnesses on the HA stack share (bench/ha_matrix, bench/ha_routing): the stack's
env file, Patroni's view of the nodes, the stack's scripts (wait-healthy, ha-fault), the
pgwatchdog daemon started and stopped around a measurement, and its /metrics parsed."""

import json
import os
import select
import signal
import subprocess
import time

import prometheus_text
import sched_stat
from http_helpers import http_get

STACK_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                          "tests", "ha_stack"))


def load_env(root, die):
    """ROOT/env (written by `ha-stack start`) as a dict; DIE(message) when there is none."""
    env = {}
    path = os.path.join(root, "env")
    if not os.path.exists(path):
        die(f"no {path}: start a stack with tests/ha_stack/ha-stack start, pass its HA_ROOT")
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                env[k] = v
    return env


def patroni_role(env, node):
    """'primary', 'replica' or None (not answering) from the node's Patroni REST API."""
    code, body = http_get(f"http://127.0.0.1:{env[f'HA_NODE{node}_API_PORT']}/patroni", 0.5)
    if code is None:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if doc.get("state") != "running":
        return None
    return "primary" if doc.get("role") in ("master", "primary") else "replica"


def leader(env):
    """The node (1 or 2) whose Patroni answers 200 on /primary, or None."""
    for n in (1, 2):
        if http_get(f"http://127.0.0.1:{env[f'HA_NODE{n}_API_PORT']}/primary", 2)[0] == 200:
            return n
    return None


def postmaster_pid(env, node):
    try:
        with open(os.path.join(env[f"HA_NODE{node}_DATA"], "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def postmaster_stopping(data_dir, pid):
    """True once the postmaster PID of DATA_DIR shuts down: its postmaster.pid says "stopping"
    (line 8, written as the shutdown begins, before backends are told), is gone or names
    another process, or PID is dead."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            lines = f.read().splitlines()
    except OSError:
        return True
    if not lines or lines[0].strip() != str(pid) or not alive(pid):
        return True
    return len(lines) >= 8 and lines[7].strip() == "stopping"


def wait_healthy(env, seconds=120):
    """ha-stack wait-healthy: one leader, a streaming replica, the stack's HAProxy agreeing."""
    subprocess.run([os.path.join(STACK_DIR, "ha-stack"), "wait-healthy", env["HA_ROOT"], str(seconds)],
                   check=True)


def run_fault(env, fault_args, die):
    """Runs tests/ha_stack/ha-fault on the stack; its KEY=VALUE lines as a dict (FAULT_START,
    FAULT_END as floats)."""
    out = subprocess.run([os.path.join(STACK_DIR, "ha-fault"), env["HA_ROOT"]] + fault_args,
                         capture_output=True, text=True)
    if out.returncode != 0:
        die(f"ha-fault {' '.join(fault_args)} failed: {out.stderr.strip()}")
    kv = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    kv["FAULT_START"], kv["FAULT_END"] = float(kv["FAULT_START"]), float(kv["FAULT_END"])
    return kv


def target_summaries(text):
    """{target: {up, hs, disconnects, causes{}, probes, hedges}} of a /metrics scrape (every
    target with a pgwatchdog_ series is there, zeros where it has none of these)."""
    out = {}
    for name, samples in prometheus_text.parse(text).items():
        if not name.startswith("pgwatchdog_"):
            continue
        for lab, value in samples:
            t = lab.get("target")
            if t is None:
                continue
            d = out.setdefault(t, {"up": 0, "hs": 0, "disconnects": 0, "causes": {}, "probes": 0,
                                      "hedges": 0})
            if name == "pgwatchdog_up":
                d["up"] = value
            elif name == "pgwatchdog_in_hot_standby":
                d["hs"] = value
            elif name == "pgwatchdog_disconnects_total":
                d["disconnects"] += value
                d["causes"][lab.get("cause", "?")] = value
            elif name == "pgwatchdog_probes_total":
                d["probes"] += value
            elif name == "pgwatchdog_connect_hedges_total":
                d["hedges"] = value
    return out


class Daemon:
    """The pgwatchdog daemon on CONFIG, its output in LOG_PATH; stop() sends SIGTERM (SIGKILL
    after 10 s)."""

    def __init__(self, binary, config, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([binary, "--config", config], stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_up(self, metrics_url, targets, die, seconds=30):
        """Until every one of TARGETS is up in /metrics; DIE if the daemon exits or time runs out."""
        deadline = time.time() + seconds
        while True:
            code, body = http_get(metrics_url, 1)
            m = target_summaries(body) if code == 200 else {}
            if all(m.get(t, {}).get("up") == 1 for t in targets):
                return
            if self.proc.poll() is not None:
                die(f"pgwatchdog exited with {self.proc.returncode}; see {self.log.name}")
            if time.time() > deadline:
                die(f"pgwatchdog's targets not all up after {seconds} s: {m}")
            time.sleep(0.1)

    def cpu_wait_s(self):
        """Seconds the daemon's threads have waited for a CPU in all (sched_stat.cpu_wait_s)."""
        return sched_stat.cpu_wait_s(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def pg_wait(conn, deadline):
    """Drives an async psycopg2 connection (connect or query) until its operation is done;
    TimeoutError once DEADLINE (a time.time() value) passes, so that a silent server or path
    cannot hold a client past it."""
    import psycopg2.extensions  # only the clients need psycopg2
    started = time.time()
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.time()
        if remaining <= 0:
            raise TimeoutError("no answer within %.1f s" % (deadline - started))
        fd = conn.fileno()
        if state == psycopg2.extensions.POLL_READ:
            select.select([fd], [], [], remaining)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [fd], [], remaining)
