// /metrics of the daemon with T targets (one connection each): how long a scrape takes while
// nothing happens and while connections churn (a backend terminated every 20 ms, so series
// change and the loop is busy reconnecting), how big the exposition is, how many series it has,
// and how many of them are histogram buckets.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "support/bench_args.hpp"
#include "support/bench_daemon.hpp"
#include "support/figures.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "support/test_cluster.hpp"
#include "support/trusted_cluster.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::bench;
using testing::TestCluster;

namespace {

double millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string targets_yaml(int targets, int port) {
  std::string yaml = "defaults:\n  backoff_initial: 50ms\n  backoff_max: 1s\ntargets:\n";
  for (int i = 0; i < targets; ++i)
    yaml += "  - name: t" + std::to_string(i) + "\n    dsn: \"" + trusted_conninfo(port, "bench_metrics") + "\"\n";
  return yaml;
}

long long bucket_series(const std::string& exposition) {
  long long count = 0;
  for (std::size_t at = exposition.find("_bucket{"); at != std::string::npos;
       at = exposition.find("_bucket{", at + 1))
    ++count;
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("metrics");
  const BenchArgs args(argc, argv, {"targets", "scrapes", "daemon"});
  const int targets = args.integer("targets", 1000);
  const int scrapes = args.integer("scrapes", 500);
  const std::string daemon_binary = args.text("daemon", "");
  const std::string prefix = "metrics." + std::to_string(targets) + ".";
  try {
    if (daemon_binary.empty()) throw std::runtime_error("--daemon PATH is required");
    raise_open_files(2 * targets + 500);
    const auto cluster = start_trusted_cluster(targets + 50, {"log_statement = 'none'"});
    BenchDaemon daemon(daemon_binary, targets_yaml(targets, cluster->port()));
    const auto deadline = Clock::now() + 300s;
    while (metric_sum(daemon.scrape(), "pgwatchdog_up") < targets) {
      if (Clock::now() > deadline) throw std::runtime_error("not every target came up");
      std::this_thread::sleep_for(50ms);  // the daemon is another process: poll its scrape
    }

    const auto timed_scrapes = [&](int count) {
      std::vector<double> ms;
      std::string body;
      for (int i = 0; i < count; ++i) {
        const Clock::time_point t0 = Clock::now();
        body = daemon.scrape();
        ms.push_back(millis(Clock::now() - t0));
        std::this_thread::sleep_for(5ms);  // a scrape every ~5 ms plus its own time
      }
      return std::pair(ms, body);
    };
    const auto [idle_ms, idle_body] = timed_scrapes(std::max(10, scrapes / 5));
    emit_samples(prefix + "scrape_idle", idle_ms, "ms");
    emit_value(prefix + "size_bytes", static_cast<double>(idle_body.size()), "B");
    emit_value(prefix + "series", static_cast<double>(series_count(idle_body)), "1");
    emit_value(prefix + "histogram_bucket_series", static_cast<double>(bucket_series(idle_body)), "1");

    std::atomic<bool> churning{true};
    std::atomic<long long> terminated{0};
    std::thread churn([&] {
      const PgConn admin = connect_blocking(admin_conninfo(*cluster));
      while (churning.load()) {
        terminated += std::stoll("0" + exec_value(admin.get(),
                                                   "SELECT count(pg_terminate_backend(pid)) FROM "
                                                   "(SELECT pid FROM pg_stat_activity WHERE "
                                                   "application_name = 'bench_metrics' ORDER BY "
                                                   "random() LIMIT 1) s"));
        std::this_thread::sleep_for(20ms);  // the churn rate: one terminate per 20 ms
      }
    });
    const Clock::time_point churn_start = Clock::now();
    const auto [churn_ms, churn_body] = timed_scrapes(scrapes);
    churning = false;
    churn.join();
    emit_samples(prefix + "scrape_churn", churn_ms, "ms", "one backend terminated every 20 ms");
    emit_value(prefix + "churn_terminates_per_second",
               static_cast<double>(terminated.load()) / std::chrono::duration<double>(Clock::now() - churn_start).count(),
               "1/s");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics benchmark failed: %s\n", e.what());
    return 1;
  }
}
