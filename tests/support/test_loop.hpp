#pragma once

#include <chrono>
#include <functional>
#include <memory>

struct event_base;

namespace pgwd::testing {

/// A libevent loop for integration tests, driven until a condition holds. Waiting is on the
/// condition (checked after every loop iteration and on a 5 ms tick), never a fixed sleep.
class TestLoop {
 public:
  TestLoop();
  ~TestLoop();
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  event_base* base() const noexcept { return base_.get(); }

  /// Runs the loop until `done()` is true (returns true) or `timeout` passed (returns false).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  /// Runs the loop for `duration` no matter what: for "nothing must happen" checks.
  void run_for(std::chrono::milliseconds duration);

 private:
  struct BaseDeleter {
    void operator()(event_base* base) const noexcept;
  };
  std::unique_ptr<event_base, BaseDeleter> base_;
};

}  // namespace pgwd::testing
