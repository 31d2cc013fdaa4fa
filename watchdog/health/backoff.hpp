#pragma once

#include "health/random.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// Delays between connect attempts: the ceiling doubles from `initial` up to `max`, and each
/// delay is drawn uniformly from [ceiling/2, ceiling] ("equal jitter"), so that connections lost
/// together (a server restart) do not come back in lockstep, yet none waits needlessly long.
class Backoff {
 public:
  Backoff(Nanos initial, Nanos max, Random& random);

  /// The delay before the next attempt; each call raises the ceiling for the one after.
  Nanos next();
  /// After a success: the next delay starts from `initial` again.
  void reset() noexcept { ceiling_ = initial_; }
  Nanos ceiling() const noexcept { return ceiling_; }

 private:
  Nanos initial_;
  Nanos max_;
  Nanos ceiling_;
  Random& random_;
};

}  // namespace pgwd
