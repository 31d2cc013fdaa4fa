#pragma once

#include "health/session.hpp"
#include "pgwd/events.hpp"
#include "pgwd/loop.hpp"

namespace pgwd {

/// What an IdleWatch tells the connection that owns it: a watched connection (its life-cycle
/// states and events) or a lent one (its loan's phase).
///
/// Each call may end the owner (an observer stopped it, or a take-back let go of the loan): the
/// ones that return bool say whether the owner still wants the watch to go on; on false the watch
/// does nothing more with this event. on_fine() and on_lost() are the last thing an event does.
class IdleWatchEvents {
 public:
  /// The OS reported activity on the idle session; it is read next.
  virtual bool on_woken() = 0;
  /// Messages read along the way (NOTIFY, NOTICE), in the order they came.
  virtual bool on_arrived(const Arrivals& arrived) = 0;
  /// A probe (or, with `heartbeat`, the session's heartbeat) is about to be sent.
  virtual bool on_probing(bool heartbeat) = 0;
  /// The round trip is over: answered (ok), failed (error) or unanswered within the deadline
  /// (timeout), `took` after it was sent.
  virtual bool on_probe_ended(ProbeResult result, Nanos took, bool heartbeat) = 0;
  /// What was read accounts for the wake-up, or the round trip was answered: the session is
  /// fine as far as the watch can tell. The owner checks what else it must (the role) and calls
  /// watch() to go on watching; until then the watch reports nothing.
  virtual void on_fine() = 0;
  /// The session is gone (the server ended it, the socket died, the probe failed or timed out).
  /// The owner closes it; the watch reports nothing more until the next watch().
  virtual void on_lost(const Failure& failure) = 0;

 protected:
  ~IdleWatchEvents() = default;
};

/// Watching one idle session, written once for watched and lent connections alike: while the OS
/// reports nothing, nothing is sent; a wake-up is read first (a NOTIFY, a NOTICE or a
/// ParameterStatus explains it; a FATAL or EOF is the end), and only a wake-up that nothing
/// explains is probed, under `probe_timeout`. The owner decides when a heartbeat goes (probe()).
///
/// It is the session's SessionCallbacks receiver; an owner with several sessions (a hedged
/// attempt) forwards the watched session's callbacks to it. Loop thread only. Not copyable or
/// movable: the session and the deadline timer point at it.
class IdleWatch final : public SessionCallbacks {
 public:
  /// `loop` gives the deadline timer and the time; it and `events` must outlive the watch.
  IdleWatch(Loop& loop, Nanos probe_timeout, IdleWatchEvents& events);
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;

  /// Watches `session` (connected, nothing in flight) for readability from now on. It must stay
  /// open until stop() or the next watch(); the owner closes it.
  void watch(Session& session);
  /// If watching and nothing is in flight: sends a probe, or with `heartbeat` the session's
  /// heartbeat (one round trip that is no statement), bounded by probe_timeout, and true.
  /// Otherwise nothing, and false. Reports on_probing() at once, so an owner whose reports may
  /// stop it must not call this from inside its own reports.
  bool probe(bool heartbeat);
  /// Forgets the session and disarms the deadline: nothing is reported until the next watch().
  /// The owner closes the session. Idempotent.
  void stop();

  // SessionCallbacks, from the watched session's loop callbacks.
  void on_readable() override;
  void on_probe_done(const ProbeDone& done) override;

 private:
  enum class Phase {
    off,         ///< no session, or the owner has the last word (on_fine, on_lost)
    watching,    ///< idle, the socket watched
    inspecting,  ///< a wake-up being read
    probing,     ///< a round trip waiting for its answer
  };

  void send(bool heartbeat);
  void deadline_passed();

  Loop& loop_;
  Nanos probe_timeout_;
  IdleWatchEvents& events_;
  Session* session_ = nullptr;
  Phase phase_ = Phase::off;
  bool heartbeat_ = false;  ///< the round trip in flight is a heartbeat
  MonotonicTime sent_at_{};
  TimerPtr deadline_;
};

}  // namespace pgwd
