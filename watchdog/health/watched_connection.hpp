#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "health/attempt_gate.hpp"
#include "health/backoff.hpp"
#include "health/connection_events.hpp"
#include "health/link.hpp"
#include "health/role_requirement.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// The timing a connection's life cycle needs (a subset of TargetOptions).
struct LifecycleSettings {
  Nanos connect_timeout;
  Nanos probe_timeout;
  /// The target's heartbeat period (HeartbeatRota); zero: none. The connection itself arms no
  /// heartbeat timer: its target asks it for a round trip through heartbeat().
  Nanos heartbeat;
  Nanos backoff_initial;
  Nanos backoff_max;
  RoleRequirement role = RoleRequirement::any;  ///< re-checked after every probe
};

/// One watched connection: the life cycle of docs/design.md §5 as one explicit state machine.
///
/// It owns the deadlines (connect, probe) and the backoff; the Link does the I/O. Its target
/// decides when it sends a heartbeat (heartbeat()) and when a retry comes sooner than its backoff
/// (retry_within()).
/// Every transition goes through enter(), which reports it.
///
/// Its events may stop it: every report to `events` may end in stop() (an observer removed the
/// target), so after each report it checks that it is still live, and does nothing more if not.
/// `stopped` is final: once there, no timer is armed, nothing is sent and nothing is reported.
/// Not copyable or movable: the link and the timers hold pointers to it.
class WatchedConnection final : private LinkCallbacks {
 public:
  /// Makes the link; the ConnectionRef (the connection's own) outlives it.
  using LinkFactory = std::function<std::unique_ptr<Link>(LinkCallbacks&, const ConnectionRef&)>;

  /// Starts in `waiting`, reporting nothing until start(). `gate` (may be null: no bound) must
  /// outlive the connection; `loop` gives it timers and the time.
  WatchedConnection(ConnectionRef ref, const LifecycleSettings& settings, Loop& loop,
                    Random& random, ConnectionEvents& events, const LinkFactory& make_link,
                    AttemptGate* gate = nullptr);
  ~WatchedConnection();
  WatchedConnection(const WatchedConnection&) = delete;
  WatchedConnection& operator=(const WatchedConnection&) = delete;

  /// First connect attempt (once a connect slot is free).
  void start();
  /// Closes for good; no more events after the transition to `stopped`.
  void stop();
  /// If healthy: sends the link's heartbeat (one round trip that is no statement), `probing`
  /// until the answer, bounded by probe_timeout like any probe, and true. Otherwise nothing, and
  /// false. Reports the state change at once, so never call it from inside this connection's own
  /// events (its target calls it from a timer of its own).
  bool heartbeat();
  /// If waiting out a backoff delay: the next attempt comes at the latest `delay` from now
  /// (sooner stays sooner). Otherwise nothing. Only arms a timer and reports nothing, so it may be
  /// called from inside any event of any connection.
  void retry_within(Nanos delay);

  ConnectionState state() const noexcept { return state_; }
  const ConnectionRef& ref() const noexcept { return ref_; }

 private:
  // LinkCallbacks
  void on_resolved() override;
  void on_connected(const Connected& connected) override;
  void on_connect_failed(const ConnectFailed& failed) override;
  void on_readable() override;
  void on_probe_done(const ProbeDone& done) override;

  bool live() const noexcept { return state_ != ConnectionState::stopped; }
  bool attempting() const noexcept {
    return state_ == ConnectionState::resolving || state_ == ConnectionState::connecting;
  }
  /// Each returns whether the connection is still live afterwards.
  bool enter(ConnectionState next);
  bool deliver(const Arrivals& arrived);
  bool become_healthy();
  bool probe_finished(ProbeResult result);
  bool role_still_fits();

  void begin_attempt();
  void start_attempt();
  void attempt_over();
  void attempt_timed_out();
  void attempt_failed(const Failure& failure, const Arrivals& arrived);
  void inspect();
  void start_probe(bool heartbeat);
  void probe_timed_out();
  void go_down(const Failure& failure);
  void retry_later();
  void arm_retry(Nanos delay);
  void retry_now();

  ConnectionRef ref_;
  LifecycleSettings settings_;
  Loop& loop_;
  ConnectionEvents& events_;
  Backoff backoff_;
  ConnectionState state_ = ConnectionState::waiting;
  int attempt_ = 0;                       ///< attempts since the last success (or the start)
  std::optional<MonotonicTime> lost_at_;  ///< when the current outage was detected
  MonotonicTime probe_sent_at_{};
  bool heartbeat_in_flight_ = false;  ///< the probe in flight is a heartbeat
  MonotonicTime retry_due_{};         ///< when retry_ fires, while in backoff
  ServerInfo server_;  ///< as of the last connect or probe
  TimerPtr attempt_deadline_;
  TimerPtr probe_deadline_;
  TimerPtr retry_;
  AttemptGate* gate_;
  std::optional<AttemptGate::Ticket>
      gate_ticket_;             ///< held from asking for a slot to the attempt's end
  std::unique_ptr<Link> link_;  // last: built with a reference to *this
};

}  // namespace pgwd
