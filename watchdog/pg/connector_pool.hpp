#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "event/activity_notes.hpp"
#include "pg/connector.hpp"

namespace pgwd {

/// Connect attempts on a small pool of connector threads (WatchdogOptions::connector_threads),
/// each running a libevent loop of its own (LibeventLoop). libpq computes SCRAM inside
/// PQconnectPoll, milliseconds of CPU per attempt: here that CPU is spent on the connector
/// threads, on every core, and the watch loop only takes over finished connections.
///
/// How an attempt travels (see connector.hpp for the callback contract):
///  1. start() (watch loop) picks a thread in turn and posts the attempt to its loop; the
///     conninfo is copied, nothing is shared but the attempt's small Job record.
///  2. The connector thread runs PQconnectStartParams and every PQconnectPoll step
///     (ConnectPoller), puts the outcome, the CONNECTION_OK PGconn or the failure, in the Job
///     under its mutex, and posts its delivery to the watch loop. From then on only the watch
///     loop touches that PGconn: the mutex orders the two threads' use of it, as libpq requires.
///  3. The watch loop calls `done` unless the attempt was cancelled meanwhile: from the posted
///     delivery, or before it from the host deadline's last look (finish_if_ready), once.
///
/// Cancelling (destroying the ConnectAttempt, on the watch loop) sets the Job's atomic flag and
/// posts the cancellation to the connector thread, which PQfinishes the attempt if it is still
/// polling; an outcome already on its way is dropped by the watch loop (its PGconn finished
/// there). The flag is read by both threads; `done` is only ever touched on the watch loop.
/// So a connection stopped or removed mid-attempt leaks nothing, finishes its PGconn exactly
/// once, and is never called back.
///
/// The connector threads' busy time is theirs: their loops are not the watch loop's
/// GuardedLoop, so it counts neither as watch-loop lag nor as a slow callback. The watch loop's
/// share (taking over a connection) is noted as `connect_poll`.
///
/// Not copyable or movable (its threads hold pointers to it).
class ConnectorPool final : public Connector {
 public:
  /// Starts `threads` (at least 1) threads and returns once each one's loop runs. `watch_loop`
  /// (thread-safe post()) and `notes` must outlive the pool. Throws std::system_error (or
  /// std::runtime_error) when a thread or its loop cannot be made, with no thread left.
  ConnectorPool(Loop& watch_loop, ActivityNotes& notes, std::size_t threads);
  /// PQfinishes every attempt still polling, on its thread, and joins the threads: it never
  /// waits for an attempt's deadline. Every ConnectAttempt must be gone before.
  ~ConnectorPool() override;
  ConnectorPool(const ConnectorPool&) = delete;
  ConnectorPool& operator=(const ConnectorPool&) = delete;

  /// Always returns an attempt: even a refusal at once happens on the connector thread.
  Started start(const Conninfo& conninfo, const ConnectionRef& who, Done done) override;

  std::size_t threads() const noexcept { return workers_.size(); }

  class Worker;  // one connector thread; public for the attempt handles in the .cpp

 private:
  Loop& watch_loop_;
  ActivityNotes& notes_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::size_t next_worker_ = 0;  ///< round robin; watch loop only
  std::uint64_t next_id_ = 0;    ///< watch loop only
};

}  // namespace pgwd
