#pragma once

/// The retry schedule a connection that keeps failing must follow, checked on what the watchdog
/// decided rather than on how many attempts fit in a wall-clock window (that also depends on how
/// fast the server answers and on the machine's load).

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>

#include "support/recording_observer.hpp"

namespace pgwd::testing {

/// For one connection that failed every attempt: failure k (from 0) announced a delay drawn from
/// [c/2, c], where the ceiling c starts at `initial` and doubles per failure up to `max`; and the
/// attempt after each failure started no earlier than the delay it announced (the failure is
/// recorded a few microseconds after the retry timer was armed, hence the 1 ms).
inline void check_backoff_schedule(const RecordingObserver& observer,
                                   std::chrono::nanoseconds initial, std::chrono::nanoseconds max) {
  const auto& failures = observer.connect_failures;
  auto ceiling = initial;
  for (std::size_t k = 0; k < failures.size(); ++k) {
    const auto delay = failures[k].event.retry_in;
    CHECK_MESSAGE(delay >= ceiling / 2, "failure ", k);
    CHECK_MESSAGE(delay <= ceiling, "failure ", k);
    ceiling = ceiling >= max / 2 ? max : ceiling * 2;
  }
  // attempts[i] follows failures[i]: the first attempt is the connect itself, not a retry.
  for (std::size_t i = 0; i < observer.attempts.size() && i < failures.size(); ++i)
    CHECK_MESSAGE(observer.attempts[i].at - failures[i].at >=
                      failures[i].event.retry_in - std::chrono::milliseconds(1),
                  "attempt after failure ", i);
}

}  // namespace pgwd::testing
