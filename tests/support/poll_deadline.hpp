#pragma once

#include <algorithm>
#include <chrono>
#include <climits>

namespace pgwd::testing {

/// Milliseconds until `deadline`, rounded up, as a poll() timeout (0 once it has passed): the
/// harness's waits on a descriptor (a child's output, an HTTP peer) all end at a deadline.
inline int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
}

}  // namespace pgwd::testing
