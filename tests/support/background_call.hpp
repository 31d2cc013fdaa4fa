#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <thread>

namespace pgwd::testing {

/// Runs a blocking server action (pg_ctl promote -w, restart -w: they take a while) on a helper
/// thread while the test's loop keeps running on its own; records when the action returned, and
/// what it threw. The destructor waits for it.
class BackgroundCall {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BackgroundCall(std::function<void()> action)
      : thread_([this, action = std::move(action)] {
          try {
            action();
          } catch (const std::exception& e) {
            error_ = e.what();
          }
          done_at_ = Clock::now().time_since_epoch().count();
          done_ = true;
        }) {}
  ~BackgroundCall() { thread_.join(); }
  BackgroundCall(const BackgroundCall&) = delete;
  BackgroundCall& operator=(const BackgroundCall&) = delete;

  bool done() const { return done_; }
  Clock::time_point done_at() const { return Clock::time_point(Clock::duration(done_at_.load())); }
  const std::string& error() const { return error_; }  // read only after done()

 private:
  std::atomic<bool> done_{false};
  std::atomic<Clock::rep> done_at_{0};
  std::string error_;
  std::thread thread_;  // last: started once the rest exists
};

/// Runs `action` (pg_ctl promote -w, restart -w) on a helper thread while `loop` runs until
/// `seen()` holds once the action has returned, for up to `within`; then, if the action has not
/// returned yet, waits up to a minute more for it. REQUIREs that it returned without an error.
/// Returns whether `seen()` held, and when the action returned.
struct CallOutcome {
  bool seen = false;
  BackgroundCall::Clock::time_point returned_at;
};
template <typename Loop, typename Seen>
CallOutcome run_while_calling(Loop& loop, std::function<void()> action, Seen seen,
                              std::chrono::milliseconds within) {
  BackgroundCall call(std::move(action));
  CallOutcome outcome;
  outcome.seen = loop.run_until([&] { return call.done() && seen(); }, within);
  const bool returned =
      call.done() || loop.run_until([&] { return call.done(); }, std::chrono::minutes(1));
  REQUIRE_MESSAGE(returned, "the background call did not return within a minute");
  REQUIRE_MESSAGE(call.error().empty(), call.error());
  outcome.returned_at = call.done_at();
  return outcome;
}

}  // namespace pgwd::testing
