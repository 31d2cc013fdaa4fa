#pragma once

/// \file
/// The host's window into the watchdog. All methods run on the loop's thread (for a
/// WatchdogThread: its own thread), inside the watchdog's own callbacks; keep them short and never
/// block. Every method has an empty default, so override only what you need.
///
/// From inside any of them the host may remove any target (the event's own included), add one,
/// or destroy the Watchdog itself; an exception thrown from one is logged and ignored. The whole
/// contract, what may and may not happen inside a callback, is in pgwd/watchdog.hpp.

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
  virtual void on_server_change(const ServerChangeEvent&) {}
  virtual void on_state_change(const StateChangeEvent&) {}
};

}  // namespace pgwd
