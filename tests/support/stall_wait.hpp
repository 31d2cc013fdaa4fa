#pragma once

/// Waiting for a stream of arrivals (a burst of notifications) on a loaded machine. Bytes
/// stranded in a buffer stop the arrivals for good, since no wake-up comes for them; a loaded
/// machine only slows them down (5 s for a 2 MB burst under AddressSanitizer with the suite at
/// two tests per core, 7-12 s beside stress-ng --cpu 12). So what fails is a stall: no arrival
/// for `stall` while some are missing. The deadline is only there to end the test.

#include <chrono>
#include <cstddef>

namespace pgwd::testing {

/// Runs the loop through `run_until(predicate, deadline)` until `count()` reaches `expected` or
/// nothing new arrived for `stall`. Returns whether all arrived.
template <typename RunUntil, typename Count>
bool arrived_without_stall(RunUntil&& run_until, Count&& count, std::size_t expected,
                           std::chrono::milliseconds stall = std::chrono::seconds(5),
                           std::chrono::milliseconds deadline = std::chrono::seconds(120)) {
  std::size_t seen = count();
  auto progress_at = std::chrono::steady_clock::now();
  run_until(
      [&] {
        const std::size_t now_seen = count();
        if (now_seen != seen) {
          seen = now_seen;
          progress_at = std::chrono::steady_clock::now();
        }
        return seen >= expected || std::chrono::steady_clock::now() - progress_at > stall;
      },
      deadline);
  return count() >= expected;
}

}  // namespace pgwd::testing
