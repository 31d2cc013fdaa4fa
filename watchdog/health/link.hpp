#pragma once

/// A Session that connects itself: what a watched connection drives
/// (health/watched_connection.hpp). It resolves, walks the target's hosts and ends up with the
/// session it watches (pg/pg_link.hpp: a host walk, pg/host_walk.hpp, that produces a session,
/// pg/pg_session.hpp); unit tests script one (tests/support/scripted_link.hpp).
/// The one-channel rule of health/session.hpp holds for connecting too: connect() reports later,
/// from the loop.

#include "health/session.hpp"

namespace pgwd {

struct Connected {
  ServerInfo server;
  Arrivals arrived;  ///< startup notices
};

struct ConnectFailed {
  Failure failure;
  Arrivals arrived;
};

/// Callbacks from a Link, always from a loop callback of the link's own.
class LinkCallbacks : public SessionCallbacks {
 public:
  virtual void on_resolved() = 0;  ///< host name resolved (or none needed); connecting now
  virtual void on_connected(const Connected& connected) = 0;
  virtual void on_connect_failed(const ConnectFailed& failed) = 0;

 protected:
  ~LinkCallbacks() = default;
};

class Link : public Session {
 public:
  /// Resolves, connects and sets up (LISTEN). Ends in on_connected or on_connect_failed, from
  /// the loop, never inside connect().
  virtual void connect() = 0;
};

}  // namespace pgwd
