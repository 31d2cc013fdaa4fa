#pragma once

#include <functional>
#include <memory>

#include "event/activity_notes.hpp"
#include "health/idle_watch.hpp"
#include "health/session.hpp"
#include "lending/loan_loop.hpp"
#include "lending/loan_state.hpp"

namespace pgwd {

/// The loop's side of one loan: watches a lent connection with the IdleWatch the watchdog's own
/// connections use (health/idle_watch.hpp: idle, nothing sent; a wake-up read first, probed only
/// if that does not settle it; after LendOptions::heartbeat of silence the session's heartbeat,
/// a lone Sync unless heartbeat_query), but it never connects or reconnects: a lent connection
/// lives until it dies or is taken back, and is never closed here.
///
/// Every callback runs through a LoanLoop, holding the loan's mutex and only while the loan is
/// the loop's. What it finds it writes into the LoanState; a death it also hands to `died`, and
/// the end of a probe that answered to `probe_ended` (both called holding the mutex: they must
/// only record, never call the host).
/// Constructed and destroyed on the loop thread. Not copyable or movable.
class LentConnection final : private IdleWatchEvents {
 public:
  using Died = std::function<void(LoanState&)>;
  using ProbeEnded = std::function<void(LoanState&)>;
  /// Makes the session over the loan's connection, on `loop` (the loan's own) and reporting to
  /// `callbacks`; its close() must let go of the connection without closing it.
  using SessionFactory =
      std::function<std::unique_ptr<Session>(Loop& loop, SessionCallbacks& callbacks)>;

  /// Reads the connection (its socket): construct it holding the loan's mutex, while the loan is
  /// the loop's. `make_session` runs in start().
  LentConnection(std::shared_ptr<LoanState> loan, Loop& loop, UniqueFd duplicate,
                 SessionFactory make_session, Died died, ProbeEnded probe_ended);
  ~LentConnection();
  LentConnection(const LentConnection&) = delete;
  LentConnection& operator=(const LentConnection&) = delete;

  /// The real session: libpq's, over the loan's PGconn, which it never closes (its notices still
  /// reach the owner's receiver). `notes` names the loan in slow-callback reports.
  static SessionFactory libpq_sessions(const std::shared_ptr<LoanState>& loan,
                                       ActivityNotes& notes);

  /// Starts watching. Called holding the loan's mutex, while the loan is the loop's.
  void start();
  /// The Watchdog is going: lets go of the connection (marks the loan stopped).
  void stop();

  const std::shared_ptr<LoanState>& loan() const noexcept { return loan_; }

 private:
  // IdleWatchEvents: watching -> probing -> watching or dead.
  bool on_woken() override;
  bool on_arrived(const Arrivals& arrived) override;
  bool on_probing(bool heartbeat) override;
  bool on_probe_ended(ProbeResult, Nanos, bool) override { return true; }
  void on_fine() override;
  void on_lost(const Failure& failure) override;

  void watch();

  std::shared_ptr<LoanState> loan_;
  SessionFactory make_session_;
  Died died_;
  ProbeEnded probe_ended_;
  LoanLoop loop_;  // before everything registered with it
  IdleWatch idle_;
  TimerPtr heartbeat_;
  std::unique_ptr<Session> session_;  // last: reports to idle_
};

}  // namespace pgwd
