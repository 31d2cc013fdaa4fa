#pragma once

#include "pgwd/observer.hpp"

namespace pgwd {

/// What a WatchedConnection reports to its target: every public event, plus the OS wake-ups
/// that only metrics care about.
class ConnectionEvents : public Observer {
 public:
  virtual void on_wakeup(const ConnectionRef& connection) = 0;
};

}  // namespace pgwd
