#pragma once

/// When processes that are not ours (a cluster's backends) exit, stamped as it happens.
///
/// A test that asks how soon pgwatchdog saw the server end a session measures from the moment
/// the backend ended it: its FATAL is on the socket before the backend exits, so the exit is the
/// latest moment the socket could become readable. Everything before it (the admin connection,
/// the signal, the backend getting a CPU to act on it) is the server's and the scheduler's time,
/// not pgwatchdog's. A thread of its own waits on a pidfd per process (Linux 5.3+; a process
/// that is not our child has no other exit notification), or where the kernel or a seccomp
/// profile gives none, reads /proc/PID/stat every millisecond (gone or a zombie: exited). Were
/// the thread late to run, its stamp is late too, which only shortens the latency a test
/// computes from it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace pgwd::testing {

class ProcessExits {
 public:
  using Clock = std::chrono::steady_clock;

  /// Starts watching `pids` now: construct it before the processes are told to end.
  /// `realtime`: the watching thread runs at SCHED_FIFO priority 1 (where the process may: root
  /// or CAP_SYS_NICE; else as usual), so that each exit is stamped as it happens even while the
  /// exiting processes take every CPU (a server ending 300 backends on two cores): for a
  /// benchmark's figures, not for a test's bound, which only needs an upper one.
  explicit ProcessExits(std::vector<int> pids, bool realtime = false);
  ~ProcessExits();
  ProcessExits(const ProcessExits&) = delete;
  ProcessExits& operator=(const ProcessExits&) = delete;

  /// False where the kernel gave no pidfd for one of them: /proc is polled for it instead.
  bool pidfds() const { return pidfds_; }
  /// Waits until every process has exited; false if one has not within `timeout`.
  bool wait(std::chrono::milliseconds timeout);
  /// When `pid` was seen to exit; nullopt if it has not (or is not watched).
  std::optional<Clock::time_point> exited_at(int pid) const;

 private:
  void run();

  std::vector<int> pids_;
  std::vector<int> fds_;
  bool pidfds_ = true;
  bool realtime_ = false;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::optional<Clock::time_point>> exited_at_;
  std::size_t left_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

/// How long after a backend's exit pgwatchdog may take to report its connection down, less the
/// time the loop's thread waited for a CPU meanwhile. What is left is pgwatchdog's: the loop pass
/// that finds the socket readable reads the FATAL and reports (microseconds of CPU, a few
/// milliseconds under a sanitizer; its callbacks get 5 ms per pass before the rest waits for the
/// next one). 100 ms is 20 such passes, and a tenth of the second a missed wake-up would cost
/// before anything else (the heartbeat, 5 s by default) found the connection gone.
inline constexpr std::chrono::milliseconds kDownAfterBackendExit{100};

}  // namespace pgwd::testing
