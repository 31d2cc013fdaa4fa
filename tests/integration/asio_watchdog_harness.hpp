#pragma once

// The integration tests' WatchdogHarness (support/watchdog_fixture.hpp), with the Watchdog on a
// host's asio io_context through pgwd::AsioLoop instead of a libevent loop.

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "pgwd/adapters/asio.hpp"
#include "pgwd/watchdog.hpp"
#include "support/metrics_reader.hpp"
#include "support/recording_observer.hpp"
#include "support/watchdog_fixture.hpp"
#include "unit/loop_conformance_asio_harness.hpp"

namespace pgwd::testing {

using AsioTestLoop = AsioHarness<asio::io_context, AsioLoop>;

/// A Watchdog on an AsioLoop, with a recording observer, its own metrics store and a readable log.
/// `host.io` is the host's io_context; run it with host.run_until / run_for.
struct AsioWatchdogHarness : WatchdogQueries<AsioWatchdogHarness> {
  AsioTestLoop host;  // first: outlives the Watchdog
  RecordingObserver observer;
  std::shared_ptr<SeriesStore> metrics = make_series_store();
  std::shared_ptr<std::ostringstream> log_text = std::make_shared<std::ostringstream>();
  std::shared_ptr<spdlog::logger> logger = WatchdogHarness::make_logger(log_text);
  std::unique_ptr<Watchdog> watchdog;

  AsioWatchdogHarness() {
    WatchdogOptions options;
    options.observer = &observer;
    options.metrics = metrics;
    options.logger = logger;
    options.loop_lag_interval = std::chrono::milliseconds(10);
    watchdog = std::make_unique<Watchdog>(host.loop(), options);
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    return host.run_until(done, timeout);
  }
  void run_for(std::chrono::milliseconds duration) {
    host.run_until([] { return false; }, duration);
  }

};

/// The targets of these tests: as WatchdogFixture::target (application_name = the target's
/// name, to count its statements; quick backoff).
inline TargetOptions test_target(const TestCluster& cluster, const std::string& name,
                                 int connections) {
  TargetOptions o;
  o.name = name;
  o.conninfo = cluster.conninfo(name);
  o.connections = connections;
  o.backoff_initial = std::chrono::milliseconds(50);
  o.backoff_max = std::chrono::milliseconds(400);
  return o;
}

/// A throwaway cluster and an AsioWatchdogHarness; the cluster outlives the Watchdog.
struct AsioWatchdogFixture : ClusterHolder, AsioWatchdogHarness {
  explicit AsioWatchdogFixture(ClusterSettings settings = {})
      : ClusterHolder(std::move(settings)) {}

  TargetOptions target(const std::string& name, int connections) const {
    return test_target(cluster, name, connections);
  }
};

}  // namespace pgwd::testing
