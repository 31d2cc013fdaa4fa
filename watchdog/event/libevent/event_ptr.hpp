#pragma once

#include <event2/event.h>

#include <chrono>
#include <memory>

namespace pgwd {

/// Owns a libevent `event`; event_free also deletes it from the loop.
struct EventDeleter {
  void operator()(event* ev) const noexcept { event_free(ev); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

/// Owns a libevent `event_base` (a loop of pgwatchdog's own: WatchdogThread, the connector
/// threads, the daemon).
struct EventBaseDeleter {
  void operator()(event_base* base) const noexcept { event_base_free(base); }
};
using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;

inline timeval to_timeval(std::chrono::nanoseconds delay) {
  if (delay < std::chrono::nanoseconds::zero()) delay = std::chrono::nanoseconds::zero();
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
  return timeval{static_cast<time_t>(usec / 1'000'000), static_cast<suseconds_t>(usec % 1'000'000)};
}

}  // namespace pgwd
