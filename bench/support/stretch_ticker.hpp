#pragma once

/// \file
/// The watch loop thread's CPU between consecutive ticks of a 5 ms timer on it: a tick can only
/// run between two loop passes, so the most CPU between two ticks bounds the loop's longest busy
/// stretch from above (by one period of back-to-back work at most). Made, ticked, read and
/// destroyed on the loop thread (LoopHost::call); the work a LoopHost::call does on the loop
/// counts like any callback's. Read with longest() from a LoopHost::call, which also says how
/// much of the longest stretch the watchdog's callbacks took (where the time went).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "pgwd/loop.hpp"
#include "support/timing_loop.hpp"

namespace pgwd::bench {

class StretchTicker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Nanos kPeriod = std::chrono::milliseconds(5);

  /// One stretch between two ticks, and what of it was the watchdog's callbacks (TimingLoop's
  /// figures): the rest is the loop's own work (polling, dispatching) and the host's.
  struct Stretch {
    std::chrono::nanoseconds cpu{};
    std::chrono::nanoseconds in_callbacks{};
    std::uint64_t callbacks = 0;  ///< declined ones (GuardedLoop's pass budget) included
  };

  explicit StretchTicker(TimingLoop& loop)
      : loop_(loop), timer_(loop.make_timer([this] { tick(); })) {
    reset();
    timer_->arm(kPeriod);
  }
  void reset() {
    last_ = sample();
    ticks_.clear();
  }
  /// The stretch with the most CPU, counting only ticks after `since`, and the one still open
  /// since the last tick (work shorter than a period shows there).
  Stretch longest(Clock::time_point since = {}) const {
    Stretch longest = since_last();
    for (const auto& [at, stretch] : ticks_)
      if (at >= since && stretch.cpu > longest.cpu) longest = stretch;
    return longest;
  }

 private:
  struct Sample {
    std::int64_t cpu_ns;
    std::chrono::nanoseconds in_callbacks;
    std::uint64_t callbacks;
  };
  Sample sample() const { return {thread_cpu_ns(), loop_.total_cpu(), loop_.callbacks()}; }
  Stretch since_last() const {
    const Sample now = sample();
    // TimingLoop::reset() (a benchmark's new window) may come between two ticks: never below 0.
    return {std::chrono::nanoseconds(now.cpu_ns - last_.cpu_ns),
            std::max(now.in_callbacks - last_.in_callbacks, std::chrono::nanoseconds::zero()),
            now.callbacks >= last_.callbacks ? now.callbacks - last_.callbacks : now.callbacks};
  }
  void tick() {
    ticks_.emplace_back(Clock::now(), since_last());
    last_ = sample();
    timer_->arm(kPeriod);
  }
  TimingLoop& loop_;
  TimerPtr timer_;
  Sample last_{};
  std::vector<std::pair<Clock::time_point, Stretch>> ticks_;
};

}  // namespace pgwd::bench
