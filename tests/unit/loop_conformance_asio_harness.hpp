#pragma once

// The conformance Harness (loop_conformance.hpp) for pgwd::AsioLoop, for either asio flavour:
// the including file picks it (PGWD_ASIO_USE_BOOST or not) and includes the adapter and
// executor_work_guard.hpp first; make_work_guard is found by argument-dependent lookup.

#include <chrono>
#include <functional>
#include <memory>

#include "pgwd/loop.hpp"

namespace pgwd::testing {

/// An io_context and an AsioLoop on it, run from the test thread.
template <typename IoContext, typename AdapterType>
struct AsioHarness {
  IoContext io{1};  // one thread runs it: asio may skip its locking
  std::unique_ptr<AdapterType> adapter = std::make_unique<AdapterType>(io);

  Loop& loop() { return *adapter; }

  /// Runs handlers one by one, waiting inside asio for the next, until done() or the timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    // Keeps run_one_for waiting when no work is pending (a post from another thread may come).
    auto keep_waiting = make_work_guard(io);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      if (io.stopped()) io.restart();
      io.run_one_for(deadline - now);
    }
    return true;
  }

  void destroy_loop() { adapter.reset(); }
};

}  // namespace pgwd::testing
