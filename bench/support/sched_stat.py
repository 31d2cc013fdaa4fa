"""How long a process's threads waited for a CPU, from the kernel's schedstat: the machine's
share of a wall-clock time, which a bound on what pgwatchdog decides adds (the Python side of
tests/support/sched_stat.hpp)."""

import os


def _thread_wait_ns(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[1])   # run time, wait time, timeslices


def cpu_wait_s(pid, tid=None):
    """Seconds thread TID of PID (every thread of PID when TID is None) has spent runnable but
    waiting for a CPU, since it started. A thread or process that is gone counts 0."""
    if tid is not None:
        try:
            return _thread_wait_ns(pid, tid) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    total = 0
    for t in tids:
        try:
            total += _thread_wait_ns(pid, t)
        except (OSError, IndexError, ValueError):
            pass   # the thread ended meanwhile
    return total / 1e9
