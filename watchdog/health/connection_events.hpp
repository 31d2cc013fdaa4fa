#pragma once

#include "pgwd/observer.hpp"

namespace pgwd {

/// What a WatchedConnection reports to its target: every public event, plus the OS wake-ups
/// that only metrics care about.
class ConnectionEvents : public Observer {
 public:
  virtual void on_wakeup(const ConnectionRef& connection) = 0;
  /// A round trip (heartbeat or probe) brought back what the server says about itself now;
  /// before any role change is reported. The target compares servers across its connections.
  virtual void on_server_refreshed(const ConnectionRef& /*connection*/,
                                   const ServerInfo& /*server*/) {}
};

}  // namespace pgwd
