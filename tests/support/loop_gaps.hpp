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
#include "support/sched_stat.hpp"  // SchedStat, thread_schedstat, CpuWaitSince

namespace pgwd::testing {

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
