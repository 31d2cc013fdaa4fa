#pragma once

/// How long threads waited for a CPU: the machine's share of a wall-clock interval.
///
/// The kernel counts, per thread, the time it was runnable but waiting on a run queue
/// (/proc/PID/task/TID/schedstat: time on a CPU, time waiting for one, in ns). A test whose
/// bound is about wall time adds what the threads on the path waited to the bound (or takes it
/// from the figure), so that a loaded machine's doing does not fail it. Header-only, so that
/// test binaries without the rest of tests/support (the asio loop tests) share it.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <system_error>

namespace pgwd::testing {

/// A thread's scheduler statistics: time on a CPU, and time runnable but waiting for one.
struct SchedStat {
  std::chrono::nanoseconds on_cpu{0};
  std::chrono::nanoseconds waiting{0};
};

namespace detail {

inline std::optional<SchedStat> read_schedstat(const std::string& path) {
  std::ifstream in(path);
  long long on_cpu = 0;
  long long waiting = 0;
  if (!(in >> on_cpu >> waiting)) return std::nullopt;
  return SchedStat{std::chrono::nanoseconds(on_cpu), std::chrono::nanoseconds(waiting)};
}

}  // namespace detail

/// The calling thread's; nullopt where the kernel does not provide them.
inline std::optional<SchedStat> thread_schedstat() {
  return detail::read_schedstat("/proc/thread-self/schedstat");
}

/// The same for a thread of another process (or of this one: thread_schedstat(getpid(), tid)),
/// e.g. a daemon's main thread (pid, pid), which runs its watch loop. A process that has exited
/// but is not reaped yet (a zombie) still has its main thread's.
inline std::optional<SchedStat> thread_schedstat(int pid, int tid) {
  return detail::read_schedstat("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) +
                                "/schedstat");
}

/// All that process `pid`'s main thread has waited for a CPU since it started; zero if it is
/// gone. For a backend forked during a test (idle time is no wait): its share of a login.
inline std::chrono::steady_clock::duration lifetime_cpu_wait(int pid) {
  const auto stat = thread_schedstat(pid, pid);
  return stat ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(stat->waiting)
              : std::chrono::steady_clock::duration::zero();
}

/// Every thread of process `pid` now, by thread id; empty where the kernel has no statistics or
/// the process is gone.
inline std::map<int, SchedStat> process_schedstat(int pid) {
  std::map<int, SchedStat> out;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (std::filesystem::directory_iterator it(tasks, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (const auto stat = detail::read_schedstat((it->path() / "schedstat").string()))
      out[std::stoi(name)] = *stat;
  }
  return out;
}

/// How long a thread has waited for a CPU since construction: the machine's share of a
/// wall-clock interval, which a test adds to a bound on what pgwatchdog decides. Zero where the
/// kernel has no statistics. By default the calling thread (read it on the thread that made it);
/// or another process's thread, e.g. CpuWaitSince(daemon.pid(), daemon.pid()).
class CpuWaitSince {
 public:
  CpuWaitSince() : start_(read()) {}
  CpuWaitSince(int pid, int tid) : pid_(pid), tid_(tid), start_(read()) {}
  std::chrono::steady_clock::duration waited() const {
    const auto now = read();
    if (!start_ || !now) return std::chrono::steady_clock::duration::zero();
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(now->waiting -
                                                                           start_->waiting);
  }

 private:
  std::optional<SchedStat> read() const {
    return pid_ == 0 ? thread_schedstat() : thread_schedstat(pid_, tid_);
  }
  int pid_ = 0;
  int tid_ = 0;
  std::optional<SchedStat> start_;
};

/// The same summed over every thread of process `pid` (a daemon: its loop, its HTTP server, its
/// log writer; or this test process, getpid()): a thread started since counts whole, one that
/// has ended since is lost (so this under-counts, never over). Threads that waited at the same
/// moment each count: a bound that subtracts this grants the machine at most its own doing, once
/// per thread on the path.
class ProcessCpuWaitSince {
 public:
  explicit ProcessCpuWaitSince(int pid) : pid_(pid), start_(process_schedstat(pid)) {}
  std::chrono::steady_clock::duration waited() const {
    std::chrono::nanoseconds sum{0};
    for (const auto& [tid, now] : process_schedstat(pid_)) {
      const auto before = start_.find(tid);
      sum += now.waiting -
             (before == start_.end() ? std::chrono::nanoseconds(0) : before->second.waiting);
    }
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(sum);
  }

 private:
  int pid_;
  std::map<int, SchedStat> start_;
};

/// The kernel's softirq threads (ksoftirqd/N) waiting for a CPU since construction. TCP's own
/// timers (keepalive, retransmission, and with them TCP_USER_TIMEOUT) run in softirq context,
/// which these threads take over when the machine is loaded; their wait is how late the kernel's
/// timers fired for the machine's load, which no option of pgwatchdog's changes. A bound on a
/// kernel-timed detection adds it, as it adds the loop's own wait.
class SoftirqWaitSince {
 public:
  SoftirqWaitSince() {
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream comm(it->path() / "comm");
      std::string command;
      if (!std::getline(comm, command) || command.rfind("ksoftirqd/", 0) != 0) continue;
      const int pid = std::stoi(name);
      if (const auto stat = thread_schedstat(pid, pid)) start_[pid] = *stat;
    }
  }
  std::chrono::steady_clock::duration waited() const {
    std::chrono::nanoseconds sum{0};
    for (const auto& [pid, before] : start_)
      if (const auto now = thread_schedstat(pid, pid)) sum += now->waiting - before.waiting;
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(sum);
  }

 private:
  std::map<int, SchedStat> start_;
};

}  // namespace pgwd::testing
