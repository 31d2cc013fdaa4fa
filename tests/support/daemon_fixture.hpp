#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/http_client.hpp"
#include "support/test_cluster.hpp"
#include "support/test_loop.hpp"

namespace pgwd::testing {

/// End-to-end: the real `pgwatchdog` binary against a throwaway cluster, observed the way users do:
/// by scraping /metrics and reading its log.
struct DaemonFixture {
  TestCluster cluster;
  TestLoop waiter;  // waits on conditions with deadlines (no fixed sleeps)
  int metrics_port = free_tcp_port();
  std::filesystem::path config_path = std::filesystem::path(cluster.log_path()).parent_path() /
                                      ("pgwatchdog-" + std::to_string(metrics_port) + ".yaml");
  std::optional<DaemonProcess> daemon;

  std::string listen() const { return "127.0.0.1:" + std::to_string(metrics_port); }

  void write_config(const std::string& yaml) {
    std::ofstream(config_path) << yaml;
    std::filesystem::permissions(
        config_path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }

  /// A YAML target entry for the cluster; the DSN carries the cluster's password.
  std::string target_yaml(const std::string& name, int connections,
                          const std::string& extra = "") const {
    return "  - name: " + name + "\n    dsn: \"" + cluster.conninfo(name) +
           "\"\n    connections: " + std::to_string(connections) + "\n" + extra;
  }

  void start(std::vector<std::string> args) {
    daemon.emplace(PGWD_DAEMON_BINARY, std::move(args));
    if (!daemon->wait_for_output("serving metrics", std::chrono::seconds(10)))
      throw std::runtime_error("pgwatchdog did not start:\n" + daemon->output());
  }

  void start_with_config(const std::string& log_level = "debug") {
    start({"--config", config_path.string(), "--listen", listen(), "--log-level", log_level});
  }

  std::string scrape() const { return http_get("127.0.0.1", metrics_port, "/metrics").body; }

  /// The value of one sample in the last scrape text, or nullopt if the series is absent.
  static std::optional<double> sample(const std::string& text, const std::string& series) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
      if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
          line[series.size()] == ' ')
        return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
  }

  std::optional<double> metric(const std::string& series) const { return sample(scrape(), series); }

  /// Waits until `series` has `value` in a scrape (scrapes every loop tick, 5 ms apart).
  bool wait_metric(const std::string& series, double value, std::chrono::milliseconds timeout) {
    return waiter.run_until([&] { return metric(series) == value; }, timeout);
  }
};

}  // namespace pgwd::testing
