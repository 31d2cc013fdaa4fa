#pragma once

#include <event2/event.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "daemon/command_line.hpp"
#include "daemon/config.hpp"
#include "daemon/health_state.hpp"
#include "daemon/target_reload.hpp"
#include "event/libevent/event_ptr.hpp"
#include "pgwd/series_store.hpp"

namespace spdlog {
class logger;
}

namespace pgwd {
class LibeventLoop;
class Watchdog;
}  // namespace pgwd

namespace pgwd::daemon {

class DaemonLog;
class PatroniClusters;
class DaemonMetrics;
class HttpServer;
class LoopHeartbeat;
class SignalHandlers;
class StatusBoard;
class SystemdNotifier;

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
  /// SIGHUP: the file is read and parsed on a thread of its own (10,000 targets' YAML took
  /// over a second on the loop); the result comes back through the loop's post(), and the
  /// changes are applied in steps of about kReloadStep, so the loop keeps serving meanwhile.
  void reload();
  void reload_web_config();
  /// On the loop, with what the reader thread made of the file: `plan` against config_.
  void reloaded(DaemonConfig wanted, ReloadPlan plan);
  void reload_failed(const std::string& why);
  /// The host's share of a loop pass, on top of the watchdog's own budget (5 ms, its callbacks):
  /// together, with one step past it, far under the 20 ms a pass may take.
  static constexpr std::chrono::milliseconds kReloadStep{5};
  /// Runs queued reload steps for up to kReloadStep, then yields to the loop.
  void apply_some();
  void reload_done();
  /// What the status board lists: `targets` and the Patroni clusters' members watched now.
  std::vector<TargetOptions> with_members(std::vector<TargetOptions> targets) const;

  CommandLine cli_;
  DaemonConfig config_;
  std::unique_ptr<DaemonLog> log_owner_;
  std::shared_ptr<spdlog::logger> log_;
  EventBasePtr base_;
  std::unique_ptr<LibeventLoop> loop_;  // the Watchdog's, and post() for the reload reader
  std::shared_ptr<SeriesStore> metrics_;
  HealthState health_;                   // read by the HTTP threads: outlives the server
  std::unique_ptr<StatusBoard> board_;   // the Watchdog's observer; read by the HTTP threads
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<LoopHeartbeat> heartbeat_;
  std::unique_ptr<DaemonMetrics> daemon_metrics_;
  std::unique_ptr<SystemdNotifier> notifier_;  // reads board_; its timers are on base_
  std::unique_ptr<Watchdog> watchdog_;  // after the base: closed before it is freed
  std::unique_ptr<PatroniClusters> patroni_;  // after the Watchdog: removes its members first
  std::unique_ptr<SignalHandlers> signals_;
  std::thread reader_;         // reads a reloaded config; joined before the loop goes
  bool reloading_ = false;     // a read or its steps are under way
  bool reload_again_ = false;  // SIGHUP while reloading: once more when done
  std::deque<std::function<void()>> reload_steps_;
  std::function<void()> after_steps_;
};

}  // namespace pgwd::daemon
