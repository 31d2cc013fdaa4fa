#pragma once

#include <chrono>

namespace pgwd {

using MonotonicTime = std::chrono::steady_clock::time_point;
using Nanos = std::chrono::nanoseconds;

/// Where the watchdog reads the time. Injected so that deadlines, backoff and heartbeat are
/// unit-tested by advancing a fake clock instead of sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonotonicTime now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  MonotonicTime now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace pgwd
