#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace pgwd::testing {

/// Polls `done` every `pace` until it holds or `timeout` passes: for conditions that have no
/// event to wait on (a backend gone from pg_stat_activity, a pool's stats). A look that costs
/// the server a backend (an admin connection) takes a longer pace. Returns whether it held.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds pace = std::chrono::milliseconds(2)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(pace);
  }
  return true;
}

}  // namespace pgwd::testing
