#pragma once

#include <prometheus/registry.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <sstream>

#include "pgwd/watchdog.hpp"
#include "support/metrics_reader.hpp"
#include "support/recording_observer.hpp"
#include "support/test_cluster.hpp"
#include "support/test_loop.hpp"

namespace pgwd::testing {

/// What most integration tests need: a throwaway cluster, a loop, and a Watchdog on that loop with
/// a recording observer, its own registry, and a logger whose output the test can read.
struct WatchdogFixture {
  TestCluster cluster;
  TestLoop loop;
  RecordingObserver observer;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<std::ostringstream> log_text = std::make_shared<std::ostringstream>();
  std::shared_ptr<spdlog::logger> logger = make_logger(log_text);
  std::unique_ptr<Watchdog> watchdog = std::make_unique<Watchdog>(
      loop.base(), WatchdogOptions{&observer, registry, logger, std::chrono::milliseconds(10)});

  explicit WatchdogFixture(ClusterSettings settings = {}) : cluster(std::move(settings)) {}

  TargetOptions target(const std::string& name, int connections) const {
    TargetOptions o;
    o.name = name;
    o.conninfo = cluster.conninfo(name);  // application_name = target name, to count statements
    o.connections = connections;
    o.backoff_initial = std::chrono::milliseconds(50);
    o.backoff_max = std::chrono::milliseconds(400);
    return o;
  }

  double metric(const std::string& name,
                const std::map<std::string, std::string>& labels = {}) const {
    return metric_value(*registry, name, labels);
  }

  std::size_t count_in(const std::string& target, ConnectionState state) const {
    const auto states = watchdog->connection_states(target);
    return static_cast<std::size_t>(std::count(states.begin(), states.end(), state));
  }

  bool all_healthy(const std::string& target, std::size_t n) const {
    return count_in(target, ConnectionState::healthy) == n;
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

}  // namespace pgwd::testing
