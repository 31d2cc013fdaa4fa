#pragma once

/// The calling thread's CPU time, for bounds on what code spends rather than on how long the
/// machine's scheduler kept the thread from a CPU (a wall-clock bound on a loaded 2-core machine
/// measures the neighbours).

#include <time.h>

#include <chrono>

namespace pgwd::testing {

inline std::chrono::nanoseconds thread_cpu_time() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace pgwd::testing
