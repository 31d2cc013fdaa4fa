#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "event/activity_notes.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// The watchdog's view of the host's loop: every callback the watchdog registers goes through
/// here, which gives three things in one place, for every adapter alike:
///
///  - Deferred deletion. delete_when_safe() destroys an object at once when none of the
///    watchdog's callbacks is running, else when the outermost one returns. So an observer may
///    remove a target, or destroy the whole Watchdog, from inside any callback: the code still on
///    the stack never runs on freed memory, and nothing waits for a later loop iteration (the
///    host may free its loop right after).
///  - Loop lag without a ticker. Every timer reports, when it fires, how late that was. An idle
///    watchdog arms no timer, so it costs the loop no wake-up; a busy one measures as it goes.
///  - Slow callbacks. The outermost callback is timed; one that ran longer than the threshold is
///    reported with the last ActivityNotes entry (like asyncio's slow_callback_duration).
///
/// Wrapped callbacks stop running once the GuardedLoop is destroyed (a task posted earlier and
/// still queued in the adapter is dropped). Not copyable or movable.
class GuardedLoop final : public Loop, public ActivityNotes {
 public:
  struct Reports {
    std::function<void(Nanos late)> timer_lag;               ///< may be empty
    std::function<void(const SlowCallback&)> slow_callback;  ///< may be empty
    Nanos slow_threshold{std::chrono::milliseconds(10)};     ///< zero: every callback
    /// Zero: off. Otherwise the most of the loop's time our callbacks take in a row before a
    /// socket's callback waits for a later loop pass (see declined()).
    Nanos pass_budget{};
  };

  GuardedLoop(Loop& inner, Reports reports);
  ~GuardedLoop() override;
  GuardedLoop(const GuardedLoop&) = delete;
  GuardedLoop& operator=(const GuardedLoop&) = delete;

  /// What a socket's callback does, for its share of the pass budget (declined()).
  enum class SocketWork {
    /// An idle connection's readiness, a probe's answer: little work each, and what detection
    /// waits for. The whole budget.
    watch,
    /// A PQconnectPoll step on this loop (LoopConnector): up to ~2.5 ms of SCRAM's CPU each.
    /// Half the budget, as timers: in a reconnect storm, the steps ready in a pass leave the
    /// other half to the watches ready with them.
    connect_step,
  };

  MonotonicTime now() const override { return inner_.now(); }
  TimerPtr make_timer(std::function<void()> on_expiry) override;
  /// A socket watch of SocketWork::watch.
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready) override;
  SocketWatchPtr make_socket_watch(std::function<void(Readiness)> on_ready, SocketWork work);
  std::unique_ptr<Resolver> make_resolver(const std::vector<std::string>& nameservers) override;
  void post(std::function<void()> task) override;
  bool in_loop_thread() const override { return inner_.in_loop_thread(); }

  void doing(CallbackPhase phase, const ConnectionRef* connection,
             const char* detail) noexcept override;

  /// Socket and timer callbacks that waited for a later pass: the pass budget was spent. A loop
  /// runs every callback that is ready when it polls (libevent: up to 4,096 sockets at a time,
  /// and every timer due), so a fleet's sockets all ready at once (a server restart ends 10,000
  /// connections), or its reconnect timers all due at once, would be one pass of 100+ ms. With
  /// Reports::pass_budget, once our callbacks have taken that long since the loop last polled
  /// (half of it for timers and connect steps, SocketWork), the others return at once: a
  /// socket's readiness is left untouched (the watches are level-triggered, so the loop reports
  /// it again after its next poll), a timer's expiry is queued. A zero timer, the marker, which
  /// only runs after a poll, resets the budget and runs the queued expiries with half of it. Posted
  /// tasks are never declined (their order is a promise).
  std::uint64_t declined() const noexcept;
  /// True while one of the watchdog's callbacks is on the stack.
  bool inside_callback() const noexcept;

  /// Destroys `object` now, or when the outermost callback returns if one is running.
  template <typename T>
  void delete_when_safe(std::unique_ptr<T> object) {
    defer(std::shared_ptr<void>(std::move(object)));
  }

  class Scope;  // shared with every wrapped callback; public for the wrappers in the .cpp

 private:
  void defer(std::shared_ptr<void> object);

  Loop& inner_;
  std::shared_ptr<Scope> scope_;
};

}  // namespace pgwd
