#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>

#include "health/attempt_gate.hpp"
#include "health/backoff.hpp"
#include "health/connection_events.hpp"
#include "health/idle_watch.hpp"
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
  /// Its target has a RecoveryScout (scout_interval > 0). Then a connection ended by the server
  /// as a whole (immediate_shutdown, server_crash: server_wide_end()) waits in `backoff` with no
  /// retry of its own, and the scout's retry_within() brings it back: a few attempts per target
  /// while the server is away, not one per connection per backoff step.
  bool scouted = false;
};

/// True for the causes where the server said that every session ends and none is accepted until
/// it restarts: an immediate shutdown's WARNING 57P01, a crash's 57P02 or the postmaster's
/// "unexpected postmaster exit". A fast shutdown's FATAL 57P01 reads as pg_terminate_backend's,
/// which ends one backend of a server that stays up, so it is not among them.
bool server_wide_end(Cause cause) noexcept;

/// One watched connection: the life cycle of docs/design.md §5 as one explicit state machine.
///
/// It owns the connect deadline and the backoff; the Link does the I/O, and while the connection
/// is healthy an IdleWatch (health/idle_watch.hpp, the lent connections' too) reads its wake-ups
/// and runs its probes under their deadline. Its target decides when it sends a heartbeat
/// (heartbeat()) and when a retry comes sooner than its backoff (retry_within()).
/// Every transition goes through enter(), which reports it.
///
/// An attempt may have a hedge (hedge()): a second link connecting beside the first. Whichever
/// connects first is the connection; the other is closed. One link reports to the state machine
/// as "the" link; the hedge's reports only decide the race.
///
/// Its events may stop it: every report to `events` may end in stop() (an observer removed the
/// target), so after each report it checks that it is still live, and does nothing more if not.
/// `stopped` is final: once there, no timer is armed, nothing is sent and nothing is reported.
/// Not copyable or movable: the link and the timers hold pointers to it.
class WatchedConnection final : private IdleWatchEvents {
 public:
  /// Makes the link; the ConnectionRef (the connection's own) outlives it.
  using LinkFactory = std::function<std::unique_ptr<Link>(LinkCallbacks&, const ConnectionRef&)>;

  /// Starts in `waiting`, reporting nothing until start(). `gate` (may be null: no bound) must
  /// outlive the connection; `loop` gives it timers and the time. `make_link` is kept (a hedge
  /// makes its link when first needed): what it refers to must outlive the connection.
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
  /// If an attempt is on its way (resolving or connecting) and the newest one began at least
  /// `older_than` ago: starts a second attempt beside it, in place of the one an earlier hedge()
  /// started if that one is still on its way too. The
  /// first of the two to connect is the connection and the other is closed; a failure of either
  /// while the other is on its way is not reported, and the other goes on under its own
  /// connect_timeout. Why: an attempt that began while the server was away can end seconds after
  /// the server answers again (a proxy that holds the client while it retries a refused server,
  /// HAProxy once a second; a SYN retransmitted after a black hole, 1 s, 3 s, 7 s apart), while a
  /// fresh one gets through at once. Nothing when no connect slot is free at once (a hedge never
  /// queues: in a reconnect storm the slots are for first attempts), nor in any other state.
  /// Returns whether a hedge was started. Only opens a link and reports nothing, so it may be
  /// called from inside any event of any connection; its target's RecoveryScout calls it.
  bool hedge(Nanos older_than);

  ConnectionState state() const noexcept { return state_; }
  const ConnectionRef& ref() const noexcept { return ref_; }

 private:
  /// The callbacks of the link in one of the two slots: says which link spoke.
  class LinkSide final : public LinkCallbacks {
   public:
    LinkSide(WatchedConnection& owner, std::size_t slot) : owner_(owner), slot_(slot) {}
    LinkSide(const LinkSide&) = delete;
    LinkSide& operator=(const LinkSide&) = delete;

   private:
    void on_resolved() override { owner_.on_resolved(); }
    void on_connected(const Connected& c) override { owner_.on_connected(slot_, c); }
    void on_connect_failed(const ConnectFailed& f) override { owner_.on_connect_failed(slot_, f); }
    void on_readable() override { owner_.on_readable(slot_); }
    void on_probe_done(const ProbeDone& d) override { owner_.on_probe_done(slot_, d); }

    WatchedConnection& owner_;
    std::size_t slot_;
  };

  void on_resolved();
  void on_connected(std::size_t slot, const Connected& connected);
  void on_connect_failed(std::size_t slot, const ConnectFailed& failed);
  void on_readable(std::size_t slot);
  void on_probe_done(std::size_t slot, const ProbeDone& done);

  Link& link() { return *links_[main_]; }
  std::size_t other() const noexcept { return 1 - main_; }
  /// Closes the hedge, if any, and gives its connect slot back.
  void drop_hedge();
  /// The hedge connected first, or the main attempt failed while the hedge is on its way: the
  /// hedge's link becomes the main one, and the main one is closed.
  void promote_hedge();

  // IdleWatchEvents: healthy -> inspecting -> probing -> healthy or down.
  bool on_woken() override;
  bool on_arrived(const Arrivals& arrived) override { return deliver(arrived); }
  bool on_probing(bool heartbeat) override;
  bool on_probe_ended(ProbeResult result, Nanos took, bool heartbeat) override;
  void on_fine() override;
  void on_lost(const Failure& failure) override { go_down(failure); }

  bool live() const noexcept { return state_ != ConnectionState::stopped; }
  bool attempting() const noexcept {
    return state_ == ConnectionState::resolving || state_ == ConnectionState::connecting;
  }
  /// Each returns whether the connection is still live afterwards.
  bool enter(ConnectionState next);
  bool deliver(const Arrivals& arrived);
  bool become_healthy();
  bool role_still_fits();

  void begin_attempt();
  void start_attempt();
  void attempt_over();
  void attempt_timed_out();
  void attempt_failed(const Failure& failure, const Arrivals& arrived);
  void go_down(const Failure& failure);
  void retry_later();
  /// In `backoff` with no timer armed: the target's scout calls retry_within().
  void wait_for_scout();
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
  MonotonicTime retry_due_{};         ///< when retry_ fires, while in backoff
  ServerInfo server_;                 ///< as of the last connect or probe
  TimerPtr attempt_deadline_;
  IdleWatch idle_;  ///< watches the main link while healthy
  TimerPtr retry_;
  AttemptGate* gate_;
  std::optional<AttemptGate::Ticket>
      gate_ticket_;  ///< held from asking for a slot to the attempt's end
  LinkFactory make_link_;
  bool hedging_ = false;             ///< the link in slot other() is on its way beside the main one
  MonotonicTime attempt_started_{};  ///< of the main attempt
  MonotonicTime hedge_started_{};
  std::optional<AttemptGate::Ticket> hedge_ticket_;
  std::array<LinkSide, 2> sides_{LinkSide{*this, 0}, LinkSide{*this, 1}};
  std::size_t main_ = 0;  ///< the slot whose link is the connection's
  // Last: built with references to the sides. Slot 1 is made by the first hedge().
  std::array<std::unique_ptr<Link>, 2> links_;
};

}  // namespace pgwd
