#pragma once

#include "event/timer.hpp"

struct event_base;

namespace pgwd {

/// Timers on a libevent loop, time from the steady clock.
class LibeventScheduler final : public Scheduler {
 public:
  explicit LibeventScheduler(event_base* base) : base_(base) {}
  LibeventScheduler(const LibeventScheduler&) = delete;
  LibeventScheduler& operator=(const LibeventScheduler&) = delete;

  TimerPtr make_timer(std::function<void()> on_expiry) override;
  MonotonicTime now() const override { return clock_.now(); }

 private:
  event_base* base_;
  SteadyClock clock_;
};

}  // namespace pgwd
