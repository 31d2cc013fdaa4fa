#pragma once

/// \file
/// A Loop decorator that measures what the watchdog's callbacks cost the loop thread: each
/// callback it hands to the inner loop is timed with the thread's own CPU clock
/// (CLOCK_THREAD_CPUTIME_ID), so the time the thread waited for one of the cores while the
/// server restarted on the other does not count. It also counts the callbacks (the loop's
/// wake-ups on the watchdog's behalf). Nested callbacks are counted once, in the outermost.
///
/// It also keeps the instant the outermost callback now running began (callback_began()): an
/// observer called from inside it can split "fault to the watchdog knowing" into the loop's
/// wake-up and the library's own path from readiness to the observer.
///
/// Everything but post() runs on the loop thread; the figures are atomics, readable anywhere.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "pgwd/loop.hpp"

namespace pgwd::bench {

class TimingLoop final : public Loop {
 public:
  explicit TimingLoop(Loop& inner) : inner_(inner) {}
  TimingLoop(const TimingLoop&) = delete;
  TimingLoop& operator=(const TimingLoop&) = delete;

  MonotonicTime now() const override { return inner_.now(); }
  TimerPtr make_timer(std::function<void()> on_expiry) override;
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override;
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override;
  void post(std::function<void()> task) override;
  bool in_loop_thread() const override { return inner_.in_loop_thread(); }

  /// Callbacks run since the last reset.
  std::uint64_t callbacks() const noexcept { return callbacks_.load(); }
  /// The longest single callback, in thread CPU time, since the last reset.
  std::chrono::nanoseconds longest_cpu() const noexcept {
    return std::chrono::nanoseconds(longest_cpu_ns_.load());
  }
  /// Thread CPU time of all callbacks since the last reset.
  std::chrono::nanoseconds total_cpu() const noexcept {
    return std::chrono::nanoseconds(total_cpu_ns_.load());
  }
  /// Thread-safe (a measurement window starts from another thread).
  void reset() noexcept;
  /// Off: callbacks are counted, not timed (longest_cpu() and total_cpu() stay 0). A read of the
  /// thread's CPU clock is a system call (2.2 µs on the benchmarks' VM), two a callback, declined
  /// ones included: in a storm's loss wave that is most of the loop's time, so the stretch
  /// ticker (one read a tick) is also run with them off. Loop thread only.
  void time_callbacks(bool on) noexcept { time_callbacks_ = on; }
  /// When the outermost callback now running began (steady_clock). Loop thread only, from
  /// inside a callback.
  std::chrono::steady_clock::time_point callback_began() const noexcept { return began_; }

  /// Runs `body` as one measured callback; public for the wrappers in the .cpp.
  template <typename F>
  void measured(F&& body);

 private:
  void account(std::int64_t cpu_ns) noexcept;

  Loop& inner_;
  int depth_ = 0;                                  // loop thread only
  bool time_callbacks_ = true;                     // loop thread only
  std::chrono::steady_clock::time_point began_{};  // loop thread only
  std::atomic<std::uint64_t> callbacks_{0};
  std::atomic<std::int64_t> longest_cpu_ns_{0};
  std::atomic<std::int64_t> total_cpu_ns_{0};
};

std::int64_t thread_cpu_ns() noexcept;

template <typename F>
void TimingLoop::measured(F&& body) {
  if (depth_ > 0) {
    body();
    return;
  }
  ++depth_;
  began_ = std::chrono::steady_clock::now();
  if (!time_callbacks_) {  // counted, not timed
    callbacks_.fetch_add(1);
    struct Leave {
      int& depth;
      ~Leave() { --depth; }
    } leave{depth_};
    body();
    return;
  }
  const std::int64_t start = thread_cpu_ns();
  try {
    body();
  } catch (...) {
    --depth_;
    account(thread_cpu_ns() - start);
    throw;
  }
  --depth_;
  account(thread_cpu_ns() - start);
}

}  // namespace pgwd::bench
