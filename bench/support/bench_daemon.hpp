#pragma once

/// \file
/// The pgwatchdog daemon as a benchmark runs it: a config file (mode 600: it holds passwords)
/// in a temporary directory, the process on a free port, and scrapes of its /metrics.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "support/daemon_process.hpp"

namespace pgwd::bench {

class BenchDaemon {
 public:
  /// Writes `config_yaml` (without a `listen:` line: one is added), starts `binary --config F`,
  /// and waits (up to `ready_timeout`) until /metrics answers 200 (the landed daemon has no
  /// /-/ready). Throws std::runtime_error
  /// with the daemon's output if it does not come up.
  BenchDaemon(const std::string& binary, const std::string& config_yaml,
              std::chrono::milliseconds ready_timeout = std::chrono::seconds(60));
  ~BenchDaemon();
  BenchDaemon(const BenchDaemon&) = delete;
  BenchDaemon& operator=(const BenchDaemon&) = delete;

  int port() const noexcept { return port_; }
  testing::DaemonProcess& process() { return *process_; }
  const std::string& config_path() const noexcept { return config_path_; }
  /// Replaces the config file's targets (for a reload); the listen line is kept.
  void rewrite_config(const std::string& config_yaml);
  /// GET /metrics; throws on a failed scrape or a status other than 200.
  std::string scrape(std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  /// Whether /metrics answers 200 now.
  bool ready() const;

 private:
  std::string directory_;
  std::string config_path_;
  int port_ = 0;
  std::unique_ptr<testing::DaemonProcess> process_;
};

/// The sum of every sample of `name` (exactly that metric name, any labels) whose label set
/// contains `label_text` (e.g. `target="daemon"`; empty: all), in a text exposition; -1 if none.
double metric_sum(std::string_view exposition, std::string_view name,
                  std::string_view label_text = {});
/// Number of samples (series lines) in a text exposition.
long long series_count(std::string_view exposition);

}  // namespace pgwd::bench
