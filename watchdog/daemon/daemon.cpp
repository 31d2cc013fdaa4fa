#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "daemon/daemon_metrics.hpp"
#include "daemon/effective_config.hpp"
#include "daemon/exit_codes.hpp"
#include "daemon/http_routes.hpp"
#include "daemon/http_server.hpp"
#include "daemon/logging.hpp"
#include "daemon/loop_heartbeat.hpp"
#include "daemon/signal_handlers.hpp"
#include "daemon/status_board.hpp"
#include "daemon/systemd_notify.hpp"
#include "daemon/target_reload.hpp"
#include "daemon/web_config.hpp"
#include "metrics/store.hpp"
#include "pgwd/adapters/libevent.hpp"
#include "pgwd/version.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {
namespace {

// A clean stop writes the log's last lines first; a stderr that nobody reads gets this long.
constexpr std::chrono::milliseconds kLogDrainTimeout{500};

}  // namespace

Daemon::Daemon(CommandLine cli, DaemonConfig config)
    : cli_(std::move(cli)),
      config_(std::move(config)),
      log_owner_(std::make_unique<DaemonLog>(config_.log_format, config_.log_level)),
      log_(log_owner_->logger()),
      base_(event_base_new()),
      metrics_(make_series_store()) {
  if (!base_) throw std::runtime_error("cannot create the event loop");
  loop_ = std::make_unique<LibeventLoop>(base_.get());
  health_.set_config_loaded();
  board_ = std::make_unique<StatusBoard>(health_);
  WebConfig web = cli_.web_config_path ? load_web_config(*cli_.web_config_path) : WebConfig{};
  OpenPath open_path;
  if (cli_.health_without_auth) open_path = is_health_check;
  http_ = std::make_unique<HttpServer>(config_.listen, std::move(web), std::move(open_path),
                                       daemon_routes(metrics_, health_, *board_));
  health_.set_listening();
  heartbeat_ = std::make_unique<LoopHeartbeat>(base_.get(), health_);
  daemon_metrics_ = std::make_unique<DaemonMetrics>(
      Store::of(*metrics_), base_.get(), config_.shard, [this] { return log_owner_->dropped(); });
  daemon_metrics_->set_shard_targets(config_.targets.size());
  notifier_ = std::make_unique<SystemdNotifier>(base_.get(), *board_, log_);
  WatchdogOptions options;
  options.observer = board_.get();
  options.metrics = metrics_;
  options.logger = log_;
  options.name = "daemon";
  // The daemon keeps a ticker, so that a stalled loop shows in event_loop_lag_seconds even while
  // every connection is idle (the library's default arms none).
  options.loop_lag_interval = std::chrono::milliseconds(100);
  options.per_target_histograms = config_.per_target_histograms;
  options.connector_threads = config_.connector_threads;
  watchdog_ = std::make_unique<Watchdog>(*loop_, options);
  signals_ = std::make_unique<SignalHandlers>(
      base_.get(),
      [this] {
        notifier_->stopping();
        event_base_loopbreak(base_.get());
      },
      [this] { reload(); });
}

Daemon::~Daemon() {
  if (reader_.joinable()) reader_.join();  // before the loop it posts to goes
}

int Daemon::run() {
  // Every target's series exist before this line announces the endpoint: a scrape that follows
  // it sees them all (with zeros). Nothing connects before the loop runs.
  board_->set_targets(config_.targets);
  for (const TargetOptions& target : config_.targets) watchdog_->add_target(target);
  if (config_.shard)
    log_->info("shard {} of {}: watching {} of the config's {} targets", config_.shard->index,
               config_.shard->total, config_.targets.size(), config_.targets_in_all_shards);
  log_->info("pgwatchdog {} serving metrics on {}://{}/metrics (port {})", kVersion,
             http_->tls() ? "https" : "http", config_.listen, http_->port());
  notifier_->ready();  // the port is bound (in the constructor) and every target added
  event_base_dispatch(base_.get());
  const auto stopping = std::chrono::steady_clock::now();
  if (reader_.joinable()) reader_.join();  // it only reads a bounded file: done at once
  reload_steps_.clear();                   // a reload half-applied stays so
  log_->info("stopping: closing {} target(s)", config_.targets.size());
  watchdog_.reset();  // closes every connection (Terminate sent); nothing blocks
  log_->info("stopped in {} ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - stopping)
                                     .count());
  // Nothing reports a drain that timed out: stderr is the one place it could go.
  log_owner_->drain(kLogDrainTimeout);
  return kExitOk;
}

void Daemon::reload_web_config() {
  if (!cli_.web_config_path) return;
  // Like the config file, a broken web config changes nothing: the running TLS and auth settings
  // keep serving. The message names the key or file, never a hash or a key's content.
  try {
    http_->reconfigure(load_web_config(*cli_.web_config_path));
    log_->info("SIGHUP: web config reloaded from {}", *cli_.web_config_path);
  } catch (const std::exception& e) {
    log_->error("SIGHUP: web config reload refused, still serving the previous one: {}",
                e.what());
  }
}

void Daemon::reload() {
  notifier_->reloading();  // once per reload, however many SIGHUPs it takes in
  reload_web_config();
  if (!cli_.config_path) {
    log_->warn("SIGHUP: started without --config, nothing to reload");
    notifier_->ready();
    return;
  }
  if (reloading_) {
    reload_again_ = true;  // the file may have changed again since this reload read it
    return;
  }
  if (reader_.joinable()) reader_.join();  // the previous one, finished: it posted its result
  reloading_ = true;
  try {
    // Nothing that goes wrong while loading may end the running daemon. load_config_file only
    // reads a regular file of bounded size (a FIFO or a device is refused unopened); the thread
    // touches its own copy of the command line, and reads config_, which the loop leaves alone
    // until the result has reached it through post(). The plan is made here too: diffing
    // 10,000 targets' settings took milliseconds of the loop.
    reader_ = std::thread([this, cli = cli_] {
      try {
        DaemonConfig wanted = effective_config(cli);
        ReloadPlan plan = plan_reload(config_.targets, wanted.targets);
        loop_->post([this, wanted = std::move(wanted), plan = std::move(plan)]() mutable {
          reloaded(std::move(wanted), std::move(plan));
        });
      } catch (const std::exception& e) {
        loop_->post([this, why = std::string(e.what())] { reload_failed(why); });
      }
    });
  } catch (const std::system_error& e) {
    reload_failed(std::string("cannot start a thread to read the file: ") + e.what());
  }
}

void Daemon::reload_failed(const std::string& why) {
  log_->error("SIGHUP: reload refused, still running the previous configuration: {}", why);
  reload_done();
}

void Daemon::reloaded(DaemonConfig wanted, ReloadPlan plan) {
  if (wanted.listen != config_.listen)
    log_->warn("SIGHUP: listen changed to {}; restart pgwatchdog to apply it (still on {})",
               wanted.listen, config_.listen);
  if (wanted.per_target_histograms != config_.per_target_histograms)
    log_->warn("SIGHUP: per_target_histograms changed to {}; restart pgwatchdog to apply it",
               wanted.per_target_histograms);
  wanted.per_target_histograms = config_.per_target_histograms;
  if (wanted.connector_threads != config_.connector_threads)
    log_->warn("SIGHUP: connector_threads changed to {}; restart pgwatchdog to apply it",
               wanted.connector_threads);
  wanted.connector_threads = config_.connector_threads;
  log_owner_->configure(wanted.log_format, wanted.log_level);
  board_->set_targets(wanted.targets);
  daemon_metrics_->set_shard_targets(wanted.targets.size());
  for (auto& step : reload_steps(plan, *watchdog_)) reload_steps_.push_back(std::move(step));
  wanted.listen = config_.listen;
  after_steps_ = [this, plan = std::move(plan), wanted = std::move(wanted)]() mutable {
    log_reload(plan, *log_);
    config_ = std::move(wanted);
  };
  apply_some();
}

void Daemon::apply_some() {
  const auto until = std::chrono::steady_clock::now() + kReloadStep;
  while (!reload_steps_.empty()) {
    const std::function<void()> step = std::move(reload_steps_.front());
    reload_steps_.pop_front();
    try {
      step();
    } catch (const std::exception& e) {  // validated already: not expected
      log_->error("SIGHUP: applying the reload: {}", e.what());
    }
    if (std::chrono::steady_clock::now() >= until) break;
  }
  if (!reload_steps_.empty()) {
    loop_->post([this] { apply_some(); });  // runs at the loop's next iteration
    return;
  }
  if (after_steps_) std::exchange(after_steps_, nullptr)();
  reload_done();
}

void Daemon::reload_done() {
  reloading_ = false;
  if (std::exchange(reload_again_, false))
    reload();
  else
    notifier_->ready();
}

}  // namespace pgwd::daemon
