#pragma once

/// \file
/// The host's window into the watchdog. All methods run on the loop thread, inside the
/// watchdog's own callbacks; keep them short and never block. Every method has an empty default,
/// so override only what you need. From inside them it is safe to call Watchdog::remove_target
/// (even for the target the event is about): destruction is deferred to a later loop iteration.

#include "pgwd/events.hpp"
#include "pgwd/export.hpp"

namespace pgwd {

class PGWD_EXPORT Observer {
 public:
  virtual ~Observer() = default;

  virtual void on_healthy(const HealthyEvent&) {}
  virtual void on_down(const DownEvent&) {}
  virtual void on_reconnect_attempt(const ReconnectAttemptEvent&) {}
  virtual void on_connect_failed(const ConnectFailedEvent&) {}
  virtual void on_probe(const ProbeEvent&) {}
  virtual void on_notification(const NotificationEvent&) {}
  virtual void on_notice(const NoticeEvent&) {}
  virtual void on_role_change(const RoleChangeEvent&) {}
  virtual void on_state_change(const StateChangeEvent&) {}
};

}  // namespace pgwd
