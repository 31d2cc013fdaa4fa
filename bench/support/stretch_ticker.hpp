#pragma once

/// \file
/// The watch loop thread's CPU between consecutive ticks of a 5 ms timer on it: a tick can only
/// run between two loop passes, so the most CPU between two ticks bounds the loop's longest busy
/// stretch from above (by one period of back-to-back work at most). Made, ticked, read and
/// destroyed on the loop thread (LoopHost::call); the work a LoopHost::call does on the loop
/// counts like any callback's. Read with longest() from a LoopHost::call.

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
  explicit StretchTicker(Loop& loop) : timer_(loop.make_timer([this] { tick(); })) {
    reset();
    timer_->arm(kPeriod);
  }
  void reset() {
    last_cpu_ns_ = thread_cpu_ns();
    ticks_.clear();
  }
  /// The most CPU between two ticks, counting only ticks after `since`, and the CPU since the
  /// last tick (a stretch still open: work shorter than a period shows there).
  std::chrono::nanoseconds longest(Clock::time_point since = {}) const {
    std::int64_t longest = thread_cpu_ns() - last_cpu_ns_;
    for (const auto& [at, cpu_ns] : ticks_)
      if (at >= since) longest = std::max(longest, cpu_ns);
    return std::chrono::nanoseconds(longest);
  }

 private:
  void tick() {
    const std::int64_t now = thread_cpu_ns();
    ticks_.emplace_back(Clock::now(), now - last_cpu_ns_);
    last_cpu_ns_ = now;
    timer_->arm(kPeriod);
  }
  TimerPtr timer_;
  std::int64_t last_cpu_ns_ = 0;
  std::vector<std::pair<Clock::time_point, std::int64_t>> ticks_;
};

}  // namespace pgwd::bench
