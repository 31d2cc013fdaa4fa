#pragma once

/// The I/O side of one watched connection, seen from the state machine. The real one drives libpq
/// on libevent (pg/pg_link.hpp); unit tests script one to walk the state machine through every
/// transition with a fake clock.

#include <string>

#include "pgwd/connection_state.hpp"
#include "pgwd/events.hpp"

namespace pgwd {

struct Failure {
  Cause cause = Cause::closed;
  std::string sqlstate;
  std::string message;
};

struct Notification {
  std::string channel;
  std::string payload;
  int sender_pid = 0;
};

struct Notice {
  std::string severity;
  std::string sqlstate;
  std::string message;
};

/// What reading the input after an OS wake-up showed.
struct Inspection {
  enum class Verdict {
    explained,    ///< NOTIFY, NOTICE or ParameterStatus arrived: the connection is fine
    unexplained,  ///< nothing that accounts for the wake-up: probe to find out
    went_away,    ///< the server ended the session, or the socket is dead: `failure` says why
  };
  Verdict verdict = Verdict::unexplained;
  Failure failure;
};

/// Callbacks from a Link. A link calls them as the last thing it does, so the receiver may call
/// back into the link (close it, watch it) from inside them.
class LinkCallbacks {
 public:
  virtual void on_resolved() = 0;  ///< host name resolved (or none needed); connecting now
  virtual void on_connected(const ServerInfo& server) = 0;
  virtual void on_connect_failed(const Failure& failure) = 0;
  virtual void on_readable() = 0;  ///< the OS reported activity on the idle connection
  virtual void on_probe_succeeded() = 0;
  virtual void on_probe_failed(const Failure& failure) = 0;
  virtual void on_notification(const Notification& notification) = 0;
  virtual void on_notice(const Notice& notice) = 0;

 protected:
  ~LinkCallbacks() = default;
};

class Link {
 public:
  virtual ~Link() = default;
  /// Resolves, connects and sets up (LISTEN). Ends in on_connected or on_connect_failed.
  virtual void connect() = 0;
  /// Reports on_readable whenever the socket is readable (level-triggered) until told otherwise.
  virtual void watch_idle() = 0;
  /// Reads what came, delivers NOTIFY/NOTICE through the callbacks, and says what it means.
  virtual Inspection inspect() = 0;
  /// Sends the probe query. Ends in on_probe_succeeded or on_probe_failed.
  virtual void probe() = 0;
  /// Unregisters the socket from the loop, then closes the connection. Idempotent.
  virtual void close() = 0;
  /// What the server reports now (ParameterStatus as of the last message read).
  virtual ServerInfo server_info() const = 0;
};

}  // namespace pgwd
