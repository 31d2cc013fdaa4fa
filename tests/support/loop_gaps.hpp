#pragma once

/// How late a loop runs, told apart from how loaded the machine is.
///
/// A periodic timer on the loop under test records the gap between its runs. A long gap is the
/// loop busy in a callback, blocked in a system call, or not scheduled at all because other
/// processes had the CPUs. The last part is the machine's load, not the loop's doing: the kernel
/// counts it per thread (/proc/thread-self/schedstat: time runnable but waiting on a run queue),
/// so each gap is split into that wait and the rest, the loop's own time. Tests bound the loop's
/// own time and report the raw gap; how late the loop runs on a quiet machine is a benchmark's
/// question (scripts/bench).

#include <event2/event.h>

#include <chrono>
#include <optional>
#include <string>

#include "event/libevent/event_ptr.hpp"

namespace pgwd::testing {

/// The calling thread's scheduler statistics: time on a CPU, and time runnable but waiting for
/// one. nullopt where the kernel does not provide them.
struct SchedStat {
  std::chrono::nanoseconds on_cpu{0};
  std::chrono::nanoseconds waiting{0};
};
std::optional<SchedStat> thread_schedstat();
/// The same for a thread of another process, e.g. a daemon's main thread (pid, pid), which runs
/// its watch loop.
std::optional<SchedStat> thread_schedstat(int pid, int tid);

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

/// The gaps between calls of tick(), which must come from the loop's thread.
class LoopGaps {
 public:
  using Clock = std::chrono::steady_clock;

  LoopGaps() { restart(); }
  /// Forgets the gaps so far; the next gap starts now. From the loop's thread.
  void restart();
  /// One run of the periodic timer.
  void tick();

  /// The longest gap, whatever its cause; when it ended; how it split.
  Clock::duration worst_gap() const { return worst_gap_; }
  Clock::time_point worst_gap_end() const { return worst_gap_end_; }
  SchedStat worst_gap_split() const { return worst_gap_split_; }
  /// The longest gap less the time the loop's thread waited for a CPU during it: time the loop
  /// spent running or blocked in a call. Equal to worst_gap() where the kernel has no statistics.
  Clock::duration worst_own() const { return worst_own_; }
  /// The most CPU time the loop's thread spent within one gap: its longest busy stretch, where
  /// blocking is not the question (a callback's computing, not a blocking call). Zero where the
  /// kernel has no statistics.
  std::chrono::nanoseconds worst_on_cpu() const { return worst_on_cpu_; }
  int ticks() const { return ticks_; }
  /// One line for a test's MESSAGE.
  std::string summary() const;

 private:
  Clock::time_point last_;
  std::optional<SchedStat> last_stat_;
  Clock::duration worst_gap_{0};
  Clock::time_point worst_gap_end_{};
  SchedStat worst_gap_split_{};
  Clock::duration worst_own_{0};
  std::chrono::nanoseconds worst_on_cpu_{0};
  int ticks_ = 0;
};

/// LoopGaps ticked by a persistent libevent timer on `base`. Not copyable or movable (registered
/// with the loop).
class LoopTicker {
 public:
  explicit LoopTicker(event_base* base,
                      std::chrono::milliseconds every = std::chrono::milliseconds(10));
  LoopTicker(const LoopTicker&) = delete;
  LoopTicker& operator=(const LoopTicker&) = delete;

  LoopGaps& gaps() { return gaps_; }
  const LoopGaps& gaps() const { return gaps_; }

 private:
  LoopGaps gaps_;
  EventPtr event_;
};

}  // namespace pgwd::testing
