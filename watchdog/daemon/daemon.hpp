#pragma once

#include <event2/event.h>

#include <memory>

#include "daemon/command_line.hpp"
#include "daemon/config.hpp"
#include "daemon/health_state.hpp"

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
class HttpServer;
class LoopHeartbeat;
class SignalHandlers;
class StatusBoard;

/// The running daemon: its own event loop with the library's Watchdog on it, the HTTP port
/// (/metrics, health, status page) and the signal handlers. Construction loads the web config and
/// binds the port before anything connects, so a bad web config or a busy port fails start-up
/// (ConfigError) with no connection opened.
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
  void reload_web_config();

  struct BaseDeleter {
    void operator()(event_base* base) const noexcept { event_base_free(base); }
  };

  CommandLine cli_;
  DaemonConfig config_;
  std::unique_ptr<DaemonLog> log_owner_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<event_base, BaseDeleter> base_;
  std::shared_ptr<prometheus::Registry> registry_;
  HealthState health_;                   // read by the HTTP threads: outlives the server
  std::unique_ptr<StatusBoard> board_;   // the Watchdog's observer; read by the HTTP threads
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<LoopHeartbeat> heartbeat_;
  std::unique_ptr<DaemonMetrics> daemon_metrics_;
  std::unique_ptr<Watchdog> watchdog_;  // after the base: closed before it is freed
  std::unique_ptr<SignalHandlers> signals_;
};

}  // namespace pgwd::daemon
