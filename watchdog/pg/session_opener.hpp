#pragma once

/// \file
/// Opening connections for an owner of their own (the pool) with the watched connections' host
/// walk: a HostWalk (each host resolved by the loop's Resolver, tried under its own deadline
/// through the watchdog's Connector, on a connector thread where there are some; its role
/// checked; libpq's messages redacted, their SQLSTATE kept), then PgSession::release hands the
/// PGconn over. Nothing here blocks, and no second copy of connecting exists.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "event/guarded_loop.hpp"
#include "health/link.hpp"
#include "pg/connector.hpp"
#include "pg/handles.hpp"
#include "pg/host_walk.hpp"

namespace pgwd {

/// What one opening came to.
struct OpenOutcome {
  /// CONNECTION_OK, blocking mode, libpq's own notice receiver; null when it failed.
  PgConnPtr conn;
  /// Why, when `conn` is null: the cause, the server's SQLSTATE (57P03: starting up) and a
  /// message with every password of the DSN redacted.
  Failure failure;
};

using OpenDone = std::function<void(OpenOutcome)>;

/// Starts opening one connection and returns what cancels it. Both may be called from any
/// thread. `done` runs once, on any thread (the watch loop's, or the caller's inside this call),
/// unless the opening is cancelled first; a cancel that comes too late does nothing, so the
/// receiver must take an outcome that arrives after it cancelled (and close its connection).
using OpenFunction = std::function<std::function<void()>(OpenDone)>;

/// The openings in flight on one watch loop. Loop thread only; not copyable or movable (its
/// openings are registered with the loop).
class SessionOpener {
 public:
  /// `loop` (also the slow-callback notes), `resolver` and `connector` must outlive it.
  SessionOpener(GuardedLoop& loop, Resolver& resolver, Connector& connector);
  /// Cancels every opening still in flight: no `done` runs afterwards.
  ~SessionOpener();
  SessionOpener(const SessionOpener&) = delete;
  SessionOpener& operator=(const SessionOpener&) = delete;

  /// Starts an opening with `settings` (shared by the openings of one owner; `target` names
  /// it in slow-callback reports). `done` runs once, from a loop callback, never inside open(),
  /// unless cancel() comes first; inside it the receiver may open or cancel others, but must
  /// not destroy the SessionOpener. Returns the opening's id (never 0).
  std::uint64_t open(std::shared_ptr<const LinkSettings> settings, const std::string& target,
                     OpenDone done);
  /// Cancels an opening: its `done` never runs. An unknown or finished id is ignored.
  void cancel(std::uint64_t id);

  /// open() and cancel() from any thread, posted to `loop`: an OpenFunction. `opener` is held
  /// weakly (tasks posted after it is gone do nothing); `loop` must outlive every call.
  static OpenFunction from_any_thread(Loop& loop, std::weak_ptr<SessionOpener> opener,
                                      std::shared_ptr<const LinkSettings> settings,
                                      std::string target);

 private:
  class Opening;
  struct Entry {
    std::unique_ptr<Opening> opening;
    OpenDone done;
  };
  void finished(std::uint64_t id, OpenOutcome outcome);

  GuardedLoop& loop_;
  Resolver& resolver_;
  Connector& connector_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Entry> openings_;
};

}  // namespace pgwd
