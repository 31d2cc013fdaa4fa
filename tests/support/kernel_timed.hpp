#pragma once

/// A detection the kernel times (keepalive, TCP_USER_TIMEOUT) after a black hole starts, bounded
/// on what the options decide. The path may be dark from the moment the call that starts the
/// black hole begins (lower bounds count from then) and is dark once it returned (upper bounds
/// count from then, an nft subprocess later). The machine's share is measured and added to the
/// upper bound: the loop's thread and the kernel's softirq threads (which run TCP's timers on a
/// loaded machine) waiting for a CPU.

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "support/sched_stat.hpp"

namespace pgwd::testing {

class KernelTimedSince {
 public:
  using Clock = std::chrono::steady_clock;

  /// Runs `start` (e.g. [&] { ns.black_hole(); }) on the loop's thread, which this measures.
  template <typename Start>
  explicit KernelTimedSince(Start&& start) : called_(Clock::now()) {
    start();
    dark_at_ = Clock::now();
  }

  /// When the black hole was surely on: upper bounds and reports count from here.
  Clock::time_point at() const { return dark_at_; }
  /// What the loop's thread and the kernel's softirq threads waited for a CPU so far.
  Clock::duration machine() const { return loop_.waited() + kernel_.waited(); }

  /// `detected` no sooner than `at_least` after the call began, and no later than `at_most`
  /// after it returned, plus the machine's share.
  void check(Clock::time_point detected, Clock::duration at_least, Clock::duration at_most,
             const std::string& what) const {
    const auto ms = [](Clock::duration d) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    const auto waited = machine();
    INFO(what, ": ", ms(detected - dark_at_), " ms; the loop and the softirq threads waited ",
         ms(waited), " ms for a CPU");
    CHECK(detected - dark_at_ <= at_most + waited);
    CHECK(detected - called_ >= at_least);
  }

 private:
  CpuWaitSince loop_;
  SoftirqWaitSince kernel_;
  Clock::time_point called_;
  Clock::time_point dark_at_;
};

}  // namespace pgwd::testing
