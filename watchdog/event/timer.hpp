#pragma once

#include <functional>
#include <memory>

#include "event/clock.hpp"

namespace pgwd {

/// A one-shot timer on the loop. Destroying it cancels it. Never destroy a timer from inside
/// its own callback; owners keep their timers for their whole life and re-arm them.
class Timer {
 public:
  virtual ~Timer() = default;
  /// (Re)starts the countdown; a pending expiry is replaced.
  virtual void arm(Nanos delay) = 0;
  virtual void disarm() = 0;
  virtual bool armed() const = 0;
};

using TimerPtr = std::unique_ptr<Timer>;

/// Makes timers and tells the time: everything time-related the watchdog needs from its loop.
/// The real one sits on libevent; tests use a fake one whose clock they advance.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual TimerPtr make_timer(std::function<void()> on_expiry) = 0;
  virtual MonotonicTime now() const = 0;
};

}  // namespace pgwd
