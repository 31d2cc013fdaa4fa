#pragma once

#include <atomic>
#include <chrono>

namespace pgwd::daemon {

/// What `/-/healthy` and `/-/ready` answer, published by the loop thread and read by the HTTP
/// threads with atomics only: a probe never waits on the loop (a stalled loop is exactly what it
/// must report) and never looks at a database (a watchdog restarted during a database outage
/// would lose the outage it exists to report).
class HealthState {
 public:
  /// The loop beats every 100 ms (LoopHeartbeat). 5 s without a beat is 50 missed beats: far
  /// beyond any legitimate pause of the loop (a reload of 10,000 targets takes about 0.4 s, a
  /// connect storm is bounded by max_concurrent_connects at milliseconds each), and still well
  /// inside a Kubernetes liveness probe's default 10 s period x 3 failures.
  static constexpr std::chrono::milliseconds kStallThreshold{5000};

  HealthState() { beat(std::chrono::steady_clock::now()); }

  /// From the loop thread.
  void beat(std::chrono::steady_clock::time_point now) noexcept {
    last_beat_ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }
  void set_config_loaded() noexcept { config_loaded_.store(true, std::memory_order_relaxed); }
  void set_listening() noexcept { listening_.store(true, std::memory_order_relaxed); }
  /// Latched: targets added later by a reload do not make the daemon unready again (that would
  /// drop it from a Service's endpoints for a reload that changes nothing for its scrapes).
  void set_every_target_attempted() noexcept {
    every_target_attempted_.store(true, std::memory_order_relaxed);
  }

  /// From any thread.
  std::chrono::nanoseconds since_last_beat(std::chrono::steady_clock::time_point now) const noexcept {
    return now.time_since_epoch() -
           std::chrono::nanoseconds(last_beat_ns_.load(std::memory_order_relaxed));
  }
  bool healthy(std::chrono::steady_clock::time_point now) const noexcept {
    return since_last_beat(now) < kStallThreshold;
  }
  bool config_loaded() const noexcept { return config_loaded_.load(std::memory_order_relaxed); }
  bool listening() const noexcept { return listening_.load(std::memory_order_relaxed); }
  bool every_target_attempted() const noexcept {
    return every_target_attempted_.load(std::memory_order_relaxed);
  }
  bool ready() const noexcept { return config_loaded() && listening() && every_target_attempted(); }

 private:
  std::atomic<std::chrono::nanoseconds::rep> last_beat_ns_{0};
  std::atomic<bool> config_loaded_{false};
  std::atomic<bool> listening_{false};
  std::atomic<bool> every_target_attempted_{false};
};

}  // namespace pgwd::daemon
