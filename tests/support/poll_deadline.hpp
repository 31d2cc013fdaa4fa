#pragma once

#include <algorithm>
#include <chrono>
#include <climits>
#include <functional>
#include <utility>

namespace pgwd::testing {

/// Milliseconds until `deadline`, rounded up, as a poll() timeout (0 once it has passed): the
/// harness's waits on a descriptor (a child's output, an HTTP peer) all end at a deadline.
inline int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
          .count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
}

/// `check` asked at most once per `period`; in between, its last answer. For a condition that
/// costs the server a connection and a query (pg_stat_activity through TestCluster::backend_pids),
/// polled by a loop that wakes every few milliseconds (TestLoop::run_until): asked that often, it
/// forks a backend every 5 ms and takes the CPU from the watchdog and the server it waits for.
inline std::function<bool()> at_most_every(std::chrono::milliseconds period,
                                           std::function<bool()> check) {
  return [period, check = std::move(check), next = std::chrono::steady_clock::time_point{},
          last = false]() mutable {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next) {
      next = now + period;
      last = check();
    }
    return last;
  };
}

}  // namespace pgwd::testing
