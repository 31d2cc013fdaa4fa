#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "pgwd/watchdog.hpp"
#include "support/metrics_reader.hpp"
#include "support/recording_observer.hpp"
#include "support/test_cluster.hpp"
#include "support/test_loop.hpp"

namespace pgwd::testing {

/// What tests ask a harness (`Self`: it has `metrics` and `watchdog` members) about its
/// Watchdog. A base of each harness, whatever loop the Watchdog runs on.
template <typename Self>
struct WatchdogQueries {
  double metric(const std::string& name,
                const std::map<std::string, std::string>& labels = {}) const {
    return metric_value(self().metrics, name, labels);
  }
  std::size_t count_in(const std::string& target, ConnectionState state) const {
    const auto states = self().watchdog->connection_states(target);
    return static_cast<std::size_t>(std::count(states.begin(), states.end(), state));
  }
  bool all_healthy(const std::string& target, std::size_t n) const {
    return count_in(target, ConnectionState::healthy) == n;
  }

 private:
  const Self& self() const { return static_cast<const Self&>(*this); }
};

/// A Watchdog on a test loop with a recording observer, its own metrics store, and a logger whose
/// output the test can read. The servers are the test's: declare them before the harness (as a
/// base listed first, or a member before it) so that they outlive the Watchdog.
struct WatchdogHarness : WatchdogQueries<WatchdogHarness> {
  template <typename Event>
  using Stamped = RecordingObserver::Stamped<Event>;

  TestLoop loop;
  RecordingObserver observer;
  std::shared_ptr<SeriesStore> metrics = make_series_store();
  std::shared_ptr<std::ostringstream> log_text = std::make_shared<std::ostringstream>();
  std::shared_ptr<spdlog::logger> logger = make_logger(log_text);
  std::unique_ptr<Watchdog> watchdog;

  /// `nameservers`: WatchdogOptions::nameservers (none: the system's resolver configuration).
  explicit WatchdogHarness(std::vector<std::string> nameservers = {}) {
    WatchdogOptions options;
    options.observer = &observer;
    options.metrics = metrics;
    options.logger = logger;
    options.loop_lag_interval = std::chrono::milliseconds(10);
    options.nameservers = std::move(nameservers);
    watchdog = std::make_unique<Watchdog>(loop.base(), options);
  }


  /// Logs at trace level into log_text (tests read it); also to stderr with PGWD_TEST_VERBOSE=1.
  static std::shared_ptr<spdlog::logger> make_logger(
      const std::shared_ptr<std::ostringstream>& out) {
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(*out));
    if (const char* verbose = std::getenv("PGWD_TEST_VERBOSE");
        verbose && std::string(verbose) == "1")
      logger->sinks().push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_level(spdlog::level::trace);
    return logger;
  }
};

/// Holds the cluster so that, as the first base of WatchdogFixture, it is started before the
/// Watchdog exists and stopped after it is gone.
struct ClusterHolder {
  TestCluster cluster;
  explicit ClusterHolder(ClusterSettings settings) : cluster(std::move(settings)) {}
};

/// What most integration tests need: a throwaway cluster and a WatchdogHarness.
struct WatchdogFixture : ClusterHolder, WatchdogHarness {
  explicit WatchdogFixture(ClusterSettings settings = {}) : ClusterHolder(std::move(settings)) {}

  TargetOptions target(const std::string& name, int connections) const {
    TargetOptions o;
    o.name = name;
    o.conninfo = cluster.conninfo(name);  // application_name = target name, to count statements
    o.connections = connections;
    o.backoff_initial = std::chrono::milliseconds(50);
    o.backoff_max = std::chrono::milliseconds(400);
    return o;
  }
};

}  // namespace pgwd::testing
