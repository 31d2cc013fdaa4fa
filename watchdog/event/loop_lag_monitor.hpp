#pragma once

#include <functional>

#include "event/timer.hpp"

namespace pgwd {

/// Measures how late the loop runs its timers: a timer due every `period` reports, each time it
/// fires, how long after its due time that was. A callback that blocks the loop shows up here.
class LoopLagMonitor {
 public:
  using Report = std::function<void(Nanos lag)>;

  LoopLagMonitor(Scheduler& scheduler, Nanos period, Report report);
  LoopLagMonitor(const LoopLagMonitor&) = delete;
  LoopLagMonitor& operator=(const LoopLagMonitor&) = delete;

 private:
  void on_tick();

  Scheduler& scheduler_;
  Nanos period_;
  Report report_;
  MonotonicTime due_;
  TimerPtr timer_;
};

}  // namespace pgwd
