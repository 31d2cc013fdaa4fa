#pragma once

#include <optional>
#include <vector>

#include "event/guarded_loop.hpp"
#include "pg/connector.hpp"

namespace pgwd {

/// One connect attempt on one loop: PQconnectStartParams, then a PQconnectPoll step each time
/// the socket is ready for what the previous step asked, the watch re-pointed at PQsocket()
/// every time (the socket may change between steps). Nothing blocks. The same code runs on the
/// watch loop (LoopConnector) and on a connector thread's own loop (ConnectorPool).
///
/// The attempt's notice receiver is the poller's own while it polls (it only collects); the
/// PGconn handed over in the outcome has libpq's own receiver again, so that nothing in it
/// points back here. There is no deadline here: the owner's (the host deadline) ends an attempt by
/// destroying the poller. Not copyable or movable (registered with the loop).
class ConnectPoller {
 public:
  /// `watch_loop` is the GuardedLoop when the poller runs on the watch loop (then `loop` is that
  /// loop, its steps are noted and take a connect step's share of the pass budget), null on a
  /// connector thread (nothing of the watch loop runs there). It and `who` must outlive the
  /// poller. Unless start() returned a failure, `done` runs once, from a callback of the
  /// poller's loop (never inside start()), as the poller's last action: it may destroy the
  /// poller.
  ConnectPoller(Loop& loop, GuardedLoop* watch_loop, const ConnectionRef& who,
                Connector::Done done);
  /// Stops watching, then PQfinishes an attempt still in flight (non-blocking: never waits).
  ~ConnectPoller();
  ConnectPoller(const ConnectPoller&) = delete;
  ConnectPoller& operator=(const ConnectPoller&) = delete;

  /// Once, on the poller's loop thread. Returns the outcome when libpq refused the attempt at
  /// once (inside PQconnectStartParams); `done` then never runs.
  std::optional<AttemptOutcome> start(const Conninfo& conninfo);
  /// ConnectAttempt::finish_if_ready: the steps whose readiness the socket shows now (a zero
  /// timeout poll), as the watch would have run them. True when `done` ran (then the poller
  /// may be gone).
  bool finish_if_ready();

 private:
  void poll();
  void arm_for(PostgresPollingStatusType polling);
  AttemptOutcome outcome(std::optional<Failure> failure);
  void finish(std::optional<Failure> failure);
  static void collect_notice(void* self, const PGresult* result);

  ActivityNotes* notes_;  ///< the watch loop's, or null
  const ConnectionRef& who_;
  Connector::Done done_;
  std::vector<Notice> notices_;
  PQnoticeReceiver libpq_receiver_ = nullptr;  ///< the one the PGconn came with
  PgConnPtr conn_;
  Interest waiting_for_ = Interest::write;  ///< what the last step asked the socket for
  bool* ended_ = nullptr;  ///< finish_if_ready's own flag while it runs: set before `done`
  SocketWatchPtr watch_;   // after conn_: destroyed first, unregistering before PQfinish
};

}  // namespace pgwd
