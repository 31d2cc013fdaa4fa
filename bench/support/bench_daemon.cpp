#include "support/bench_daemon.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support/http_client.hpp"

namespace pgwd::bench {
namespace {

using Clock = std::chrono::steady_clock;

void write_private_file(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("could not write " + path);
  }
  ::chmod(path.c_str(), 0600);
}

}  // namespace

BenchDaemon::BenchDaemon(const std::string& binary, const std::string& config_yaml,
                         std::chrono::milliseconds ready_timeout) {
  std::string pattern = (std::filesystem::temp_directory_path() / "pgwd-bench-daemon.XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  directory_ = pattern;
  config_path_ = directory_ + "/pgwatchdog.yaml";
  port_ = testing::free_tcp_port();
  rewrite_config(config_yaml);
  process_ = std::make_unique<testing::DaemonProcess>(
      binary, std::vector<std::string>{"--config", config_path_, "--log-level", "warn"});
  const Clock::time_point deadline = Clock::now() + ready_timeout;
  while (!ready()) {
    if (!process_->running())
      throw std::runtime_error("the daemon exited before it was ready:\n" + process_->output());
    if (Clock::now() > deadline)
      throw std::runtime_error("the daemon was not ready in time:\n" + process_->output());
    // Polling an HTTP endpoint has no event to wait on; 5 ms between tries.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

BenchDaemon::~BenchDaemon() {
  process_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

void BenchDaemon::rewrite_config(const std::string& config_yaml) {
  write_private_file(config_path_,
                     "listen: \"127.0.0.1:" + std::to_string(port_) + "\"\n" + config_yaml);
}

std::string BenchDaemon::scrape(std::chrono::milliseconds timeout) const {
  testing::HttpResponse response = testing::http_get("127.0.0.1", port_, "/metrics", timeout);
  if (response.status != 200)
    throw std::runtime_error("/metrics answered " + std::to_string(response.status));
  return std::move(response.body);  // megabytes: not copied
}

bool BenchDaemon::ready() const {
  try {
    return testing::http_get("127.0.0.1", port_, "/metrics", std::chrono::seconds(2)).status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

double metric_sum(std::string_view exposition, std::string_view name, std::string_view label_text) {
  double sum = 0;
  bool found = false;
  std::size_t start = 0;
  while (start < exposition.size()) {
    std::size_t end = exposition.find('\n', start);
    if (end == std::string_view::npos) end = exposition.size();
    const std::string_view line = exposition.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line.front() == '#' || line.substr(0, name.size()) != name) continue;
    const char after = line.size() > name.size() ? line[name.size()] : '\0';
    if (after != '{' && after != ' ') continue;
    if (!label_text.empty() && line.find(label_text) == std::string_view::npos) continue;
    const std::size_t space = line.rfind(' ');
    sum += std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    found = true;
  }
  return found ? sum : -1;
}

long long series_count(std::string_view exposition) {
  long long count = 0;
  std::size_t start = 0;
  while (start < exposition.size()) {
    std::size_t end = exposition.find('\n', start);
    if (end == std::string_view::npos) end = exposition.size();
    if (end > start && exposition[start] != '#') ++count;
    start = end + 1;
  }
  return count;
}

}  // namespace pgwd::bench
