#pragma once

/// \file
/// "Run one connect attempt": PQconnectStartParams, then PQconnectPoll steps until the server
/// says CONNECTION_OK or the attempt fails, for one host (one PGconn). The HostWalk
/// (pg/host_walk.hpp) asks a Connector for each host it tries; the host list walk, the host
/// deadline, and everything after CONNECTION_OK (non-blocking mode, the role check, setup_sql;
/// then the session, watched) stay on the watch loop.
///
/// Two implementations:
///  - LoopConnector (pg/loop_connector.hpp): the attempt runs on the watch loop itself, as it
///    always did (WatchdogOptions::connector_threads = 0).
///  - ConnectorPool (pg/connector_pool.hpp): the attempt runs on one of N connector threads, each
///    with a libevent loop of its own, so that SCRAM's CPU (inside PQconnectPoll) is spent there;
///    the finished PGconn moves to the watch loop (libpq allows a PGconn to change threads as
///    long as no two threads use it at once).

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "health/link.hpp"
#include "pg/conninfo.hpp"
#include "pg/handles.hpp"
#include "pgwd/events.hpp"

namespace pgwd {

/// What one attempt came to. Messages are libpq's and the server's text as they came (one line
/// each): the receiver redacts them (it knows the DSN) before they go anywhere.
struct AttemptOutcome {
  /// CONNECTION_OK, still in blocking mode, with libpq's own notice receiver; null when it failed.
  PgConnPtr conn;
  Failure failure;              ///< why, when `conn` is null
  std::vector<Notice> notices;  ///< what the server said while we connected, in order
};

/// An attempt in flight. Destroying it cancels it: `done` never runs afterwards, and the PGconn
/// (in flight or finished and not yet delivered) is PQfinished by whoever holds it then,
/// without blocking. Destroy it on the watch loop's thread (where it was started).
class ConnectAttempt {
 public:
  virtual ~ConnectAttempt() = default;

  /// The host's deadline is due (HostWalk): takes, without waiting, what has already come, so that
  /// an answer that arrived in time is not declared connect_timeout only because the loop ran
  /// the deadline's timer before the socket's callback (the pass budget may decline either, and
  /// a loop never promised their order). The loop's attempt polls its socket with a zero timeout
  /// and takes the PQconnectPoll steps that are ready; a connector thread's attempt takes an
  /// outcome the thread has finished and not yet delivered (until then the PGconn is the
  /// thread's). Returns true when that ended the attempt: `done` then ran inside this call, as
  /// its last action (it may have destroyed the attempt); false while it still waits for the
  /// server. On the watch loop's thread.
  virtual bool finish_if_ready() = 0;
};

class Connector {
 public:
  using Done = std::function<void(AttemptOutcome)>;

  /// What start() gives back: the attempt in flight, or, when libpq refused it at once (inside
  /// PQconnectStartParams: a connection refused on loopback, an address that does not parse),
  /// its outcome, returned here rather than called back.
  struct Started {
    std::unique_ptr<ConnectAttempt> attempt;  ///< null when `outcome` is set
    std::optional<AttemptOutcome> outcome;
  };

  virtual ~Connector() = default;

  /// Starts connecting with `conninfo` (copied). Called on the watch loop's thread.
  ///
  /// Callback contract: unless start() returned the outcome itself, `done` runs exactly once
  /// unless the attempt is destroyed first, on the watch loop's thread, from a loop callback
  /// (never inside start()), as the connector's last action in that callback: inside it the
  /// receiver may destroy the attempt, start another one, or destroy itself. `who` names the
  /// connection in slow-callback reports and must outlive the attempt. The Connector must
  /// outlive every attempt it started.
  virtual Started start(const Conninfo& conninfo, const ConnectionRef& who, Done done) = 0;
};

}  // namespace pgwd
