#pragma once

#include <event2/event.h>

#include <memory>

#include "daemon/command_line.hpp"
#include "daemon/config.hpp"

namespace spdlog {
class logger;
}
namespace prometheus {
class Registry;
}

namespace pgwd {
class Watchdog;
}

namespace pgwd::daemon {

class DaemonLog;
class DaemonMetrics;
class MetricsEndpoint;
class SignalHandlers;

/// The running daemon: its own event loop with the library's Watchdog on it, the /metrics endpoint
/// and the signal handlers. Construction binds the endpoint before anything connects, so a busy
/// port fails start-up (ConfigError) with no connection opened.
class Daemon {
 public:
  Daemon(CommandLine cli, DaemonConfig config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  /// Runs until SIGTERM/SIGINT, then closes every connection and drains the log (for at most
  /// kLogDrainTimeout: a stderr nobody reads must not keep the process from exiting); returns the
  /// exit code. The metrics endpoint is still up: see main.cpp for why the process then leaves
  /// without tearing it down.
  int run();

 private:
  void reload();

  struct BaseDeleter {
    void operator()(event_base* base) const noexcept { event_base_free(base); }
  };

  CommandLine cli_;
  DaemonConfig config_;
  std::unique_ptr<DaemonLog> log_owner_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<event_base, BaseDeleter> base_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  std::unique_ptr<DaemonMetrics> daemon_metrics_;
  std::unique_ptr<Watchdog> watchdog_;  // after the base: closed before it is freed
  std::unique_ptr<SignalHandlers> signals_;
};

}  // namespace pgwd::daemon
