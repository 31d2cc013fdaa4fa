#include "event/loop_lag_monitor.hpp"

#include <algorithm>

namespace pgwd {

LoopLagMonitor::LoopLagMonitor(Scheduler& scheduler, Nanos period, Report report)
    : scheduler_(scheduler),
      period_(period),
      report_(std::move(report)),
      due_(scheduler.now() + period),
      timer_(scheduler.make_timer([this] { on_tick(); })) {
  timer_->arm(period_);
}

void LoopLagMonitor::on_tick() {
  const MonotonicTime now = scheduler_.now();
  report_(std::max(Nanos::zero(), now - due_));
  // One-shot and re-armed from now: a long stall is reported once, not as a burst of catch-up
  // ticks.
  due_ = now + period_;
  timer_->arm(period_);
}

}  // namespace pgwd
