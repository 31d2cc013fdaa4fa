#pragma once

#include <functional>
#include <memory>

#include "event/activity_notes.hpp"
#include "health/session.hpp"
#include "lending/loan_loop.hpp"
#include "lending/loan_state.hpp"
#include "pg/pg_session.hpp"

namespace pgwd {

/// The loop's side of one loan: watches a lent connection the way WatchedConnection watches the
/// watchdog's own (idle: nothing sent; a wake-up: read, probe only if that does not settle it;
/// heartbeat if asked), but it never connects or reconnects: a lent connection lives until it
/// dies or is taken back, and is never closed here.
///
/// Every callback runs through a LoanLoop, holding the loan's mutex and only while the loan is
/// the loop's. What it finds it writes into the LoanState; a death it also hands to `died`, and
/// the end of a probe that answered to `probe_ended` (both called holding the mutex: they must
/// only record, never call the host).
/// Constructed and destroyed on the loop thread. Not copyable or movable.
class LentConnection final : private SessionCallbacks {
 public:
  using Died = std::function<void(LoanState&)>;
  using ProbeEnded = std::function<void(LoanState&)>;

  /// Reads the connection (its socket, host): construct it holding the loan's mutex, while the
  /// loan is the loop's.
  LentConnection(std::shared_ptr<LoanState> loan, Loop& loop, ActivityNotes& notes,
                 UniqueFd duplicate, Died died, ProbeEnded probe_ended);
  ~LentConnection();
  LentConnection(const LentConnection&) = delete;
  LentConnection& operator=(const LentConnection&) = delete;

  /// Starts watching. Called holding the loan's mutex, while the loan is the loop's.
  void start();
  /// The Watchdog is going: lets go of the connection (marks the loan stopped).
  void stop();

  const std::shared_ptr<LoanState>& loan() const noexcept { return loan_; }

 private:
  // SessionCallbacks
  void on_readable() override;
  void on_probe_done(const ProbeDone& done) override;

  void keep(const Arrivals& arrived);
  void watch();
  void start_probe();
  void die(const Failure& failure);

  std::shared_ptr<LoanState> loan_;
  ConnectionRef who_;
  SessionSettings settings_;
  ActivityNotes& notes_;
  Died died_;
  ProbeEnded probe_ended_;
  LoanLoop loop_;  // before everything registered with it
  TimerPtr probe_deadline_;
  TimerPtr heartbeat_;
  std::unique_ptr<PgSession> link_;  // last: built with a reference to *this
};

}  // namespace pgwd
