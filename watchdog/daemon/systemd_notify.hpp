#pragma once

#include <event2/event.h>

#include <chrono>
#include <memory>
#include <string>

#include "event/libevent/event_ptr.hpp"

namespace spdlog {
class logger;
}

namespace pgwd::daemon {

class StatusBoard;

/// The daemon's side of systemd's notify protocol (sd_notify(3), through libsystemd): READY=1
/// once the port is bound and every target added, RELOADING=1 (with MONOTONIC_USEC) and READY=1
/// around a SIGHUP's reload, STOPPING=1, STATUS= with the targets up, and WATCHDOG=1 pings.
///
/// The pings come from a timer on the daemon's own loop, the one that watches every connection:
/// when something blocks that loop, the pings stop and systemd (WatchdogSec=) kills and restarts
/// the daemon. Nothing is armed or sent when the daemon does not run under a notify-aware
/// manager (no $NOTIFY_SOCKET, as in a container): every call is then a no-op.
///
/// Loop thread only.
class SystemdNotifier {
 public:
  /// STATUS= is refreshed this often, and sent only when it changed.
  static constexpr std::chrono::seconds kStatusPeriod{1};

  SystemdNotifier(event_base* base, const StatusBoard& board, std::shared_ptr<spdlog::logger> log);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  /// Whether $NOTIFY_SOCKET was set when the daemon started.
  bool enabled() const noexcept { return enabled_; }
  /// The interval between two WATCHDOG=1 pings: half of $WATCHDOG_USEC, or zero when the
  /// manager asked for none.
  std::chrono::microseconds ping_interval() const noexcept { return ping_interval_; }

  /// READY=1 and the current STATUS; ends a reload that reloading() announced.
  void ready();
  /// RELOADING=1 and MONOTONIC_USEC=; a second call before ready() sends nothing.
  void reloading();
  /// STOPPING=1.
  void stopping();

 private:
  static void on_status_timer(evutil_socket_t, short, void* self);
  static void on_ping_timer(evutil_socket_t, short, void* self);
  std::string status_line() const;
  void send(const std::string& message);

  const StatusBoard& board_;
  std::shared_ptr<spdlog::logger> log_;
  bool enabled_ = false;
  bool reloading_ = false;
  bool send_failed_ = false;  // logged once: a manager that went away must not flood the log
  std::chrono::microseconds ping_interval_{0};
  std::string last_status_;
  EventPtr status_timer_;
  EventPtr ping_timer_;
};

}  // namespace pgwd::daemon
