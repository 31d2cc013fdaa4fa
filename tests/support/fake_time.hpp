#pragma once

#include <map>
#include <memory>
#include <vector>

#include "event/timer.hpp"

namespace pgwd::testing {

/// A Scheduler whose clock only moves when the test says so. advance() fires every timer that
/// falls due, in due order, each at its own due time (so a timer armed by another timer's
/// callback fires within the same advance if it falls due in time). No sleeping, no real loop.
class FakeScheduler final : public Scheduler {
 public:
  TimerPtr make_timer(std::function<void()> on_expiry) override;
  MonotonicTime now() const override { return now_; }

  void advance(Nanos by);
  /// Moves the clock without running any timer, as a loop busy in a callback would; the next
  /// advance() then runs the overdue timers late.
  void stall(Nanos by) { now_ += by; }
  /// How many timers are armed right now.
  std::size_t armed_timers() const;

 private:
  class FakeTimer;
  friend class FakeTimer;

  MonotonicTime now_{std::chrono::hours(1)};  // not the epoch, so "zero" stands out
  std::uint64_t sequence_ = 0;                // keeps timers due at the same time in arming order
  std::vector<FakeTimer*> timers_;
};

}  // namespace pgwd::testing
