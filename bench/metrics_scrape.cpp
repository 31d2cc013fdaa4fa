// /metrics of the daemon with T targets (one connection each): how long a scrape takes while
// nothing happens and while connections churn (a backend terminated every 20 ms, so series
// change and the loop is busy reconnecting), how big the exposition is, how many series it has,
// and how many of them are histogram buckets; the same with per_target_histograms: false; 50
// scrapers at once against one target; and,
// in this process on a series store of the same shape, where a scrape's time goes: what
// /metrics does (SeriesStore::append_text), and what a host's prometheus-cpp Exposer does
// (pgwd::prometheus_collectable's Collect, then TextSerializer), and the store's memory per
// target (RSS growth per row). --bouncer-targets B: the daemon again with B more targets, idle
// through PgBouncer, scraped idle and during the same churn (metrics.<T + B>.*);
// --inprocess-sizes: the in-process figures at more sizes.
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "metrics/loop_series.hpp"
#include "metrics/store.hpp"
#include "metrics/target_series.hpp"
#include "pgwd/prometheus_collectable.hpp"
#include "support/bench_args.hpp"
#include "support/bench_daemon.hpp"
#include "support/figures.hpp"
#include "support/pgbouncer.hpp"
#include "support/process_stats.hpp"
#include "support/raw_connection.hpp"
#include "support/test_cluster.hpp"
#include "support/trusted_cluster.hpp"

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::bench;
using testing::PgBouncer;
using testing::PgBouncerSettings;
using testing::TestCluster;

namespace {

double millis(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

/// `targets` targets straight to PostgreSQL at `port` (the churn terminates their backends), and
/// `bouncer_targets` more through PgBouncer at `bouncer_port` (idle: 10,000 backends do not fit).
std::string targets_yaml(int targets, int port, bool per_target_histograms = true,
                         int bouncer_targets = 0, int bouncer_port = 0) {
  std::string yaml = per_target_histograms ? "" : "per_target_histograms: false\n";
  yaml += "defaults:\n  backoff_initial: 50ms\n  backoff_max: 1s\ntargets:\n";
  for (int i = 0; i < targets; ++i)
    yaml += "  - name: t" + std::to_string(i) + "\n    dsn: \"" +
            trusted_conninfo(port, "bench_metrics") + "\"\n";
  for (int i = 0; i < bouncer_targets; ++i)
    yaml += "  - name: b" + std::to_string(i) + "\n    dsn: \"" +
            trusted_conninfo(bouncer_port, "bench_metrics_idle") + "\"\n";
  return yaml;
}

long long bucket_series(const std::string& exposition) {
  long long count = 0;
  for (std::size_t at = exposition.find("_bucket{"); at != std::string::npos;
       at = exposition.find("_bucket{", at + 1))
    ++count;
  return count;
}

void wait_until_all_up(const BenchDaemon& daemon, int targets) {
  const auto deadline = Clock::now() + 300s;
  while (metric_sum(daemon.scrape(), "pgwatchdog_up") < targets) {
    if (Clock::now() > deadline) throw std::runtime_error("not every target came up");
    std::this_thread::sleep_for(50ms);  // the daemon is another process: poll its scrape
  }
}

std::vector<double> timed_scrapes(const BenchDaemon& daemon, int count, std::string& body) {
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    const Clock::time_point t0 = Clock::now();
    body = daemon.scrape();
    ms.push_back(millis(Clock::now() - t0));
    std::this_thread::sleep_for(5ms);  // a scrape every ~5 ms plus its own time
  }
  return ms;
}

/// `scrapers` threads released at once, each scraping `each` times back to back: every scrape's
/// time, which is mostly its wait behind the others for the CPU (each serializes the registry).
std::vector<double> concurrent_scrapes(const BenchDaemon& daemon, int scrapers, int each) {
  std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(scrapers));
  std::latch start(scrapers);
  std::vector<std::thread> threads;
  for (int t = 0; t < scrapers; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < each; ++i) {
        const Clock::time_point t0 = Clock::now();
        (void)daemon.scrape(5s);
        per_thread[static_cast<std::size_t>(t)].push_back(millis(Clock::now() - t0));
      }
    });
  for (auto& thread : threads) thread.join();
  std::vector<double> all;
  for (const auto& samples : per_thread) all.insert(all.end(), samples.begin(), samples.end());
  if (all.size() != static_cast<std::size_t>(scrapers * each))
    throw std::runtime_error("a concurrent scrape failed");
  return all;
}

// The daemon's series for `targets` targets, with one probe and one outage each, in this process:
// how long the store's text writer (what /metrics does, without HTTP), the prometheus-cpp
// collectable and TextSerializer take on them.
void breakdown(const std::string& prefix, int targets, int rounds) {
  const auto metrics = make_series_store();
  Store& store = Store::of(*metrics);
  LoopSeries loop(store, "daemon");
  std::vector<std::unique_ptr<TargetSeries>> series;
  series.reserve(static_cast<std::size_t>(targets));
  const std::int64_t rss_before = rss_bytes();
  for (int i = 0; i < targets; ++i) {
    series.push_back(std::make_unique<TargetSeries>(store, "t" + std::to_string(i)));
    series.back()->probed(ProbeResult::ok, std::chrono::microseconds(300 + i));
    series.back()->outage(std::chrono::milliseconds(40 + i));
  }
  emit_value(prefix + "inprocess.store_bytes_per_target",
             static_cast<double>(rss_bytes() - rss_before) / targets, "B",
             "RSS growth per target row of the series store (per-target histograms)");
  // One way after the other, each for all rounds: interleaved, each would run on the caches the
  // previous one emptied.
  std::vector<double> collect_ms, serializer_ms, in_place_ms;
  std::string in_place;
  for (int round = 0; round < rounds; ++round) {
    in_place.clear();
    in_place.reserve(4u << 20);
    const Clock::time_point t0 = Clock::now();
    metrics->append_text(in_place);
    in_place_ms.push_back(millis(Clock::now() - t0));
  }
  const auto collectable = prometheus_collectable(metrics);
  for (int round = 0; round < rounds; ++round) {
    const Clock::time_point t0 = Clock::now();
    const auto collected = collectable->Collect();
    collect_ms.push_back(millis(Clock::now() - t0));
  }
  const auto collected = collectable->Collect();
  std::string theirs;
  for (int round = 0; round < rounds; ++round) {
    const Clock::time_point t0 = Clock::now();
    theirs = prometheus::TextSerializer().Serialize(collected);
    serializer_ms.push_back(millis(Clock::now() - t0));
  }
  if (in_place != theirs) throw std::runtime_error("the writer and TextSerializer disagree");
  emit_samples(prefix + "inprocess.collect", collect_ms, "ms",
               "pgwd::prometheus_collectable's Collect, what a host's Exposer does first");
  emit_samples(prefix + "inprocess.text_serializer", serializer_ms, "ms",
               "prometheus::TextSerializer on it, what a host's Exposer does next");
  emit_samples(prefix + "inprocess.in_place", in_place_ms, "ms",
               "SeriesStore::append_text, what /metrics does");
}

/// `scrapes` scrapes while one backend of the directly connected targets is terminated every
/// 20 ms (so series change and the loop is busy reconnecting).
void churned_scrapes(const std::string& prefix, const BenchDaemon& daemon, TestCluster& cluster,
                     int scrapes) {
  std::atomic<bool> churning{true};
  std::atomic<long long> terminated{0};
  std::thread churn([&] {
    const PgConn admin = connect_blocking(admin_conninfo(cluster));
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
  std::string churn_body;
  const auto churn_ms = timed_scrapes(daemon, scrapes, churn_body);
  churning = false;
  churn.join();
  emit_samples(prefix + "scrape_churn", churn_ms, "ms", "one backend terminated every 20 ms");
  emit_value(prefix + "churn_terminates_per_second",
             static_cast<double>(terminated.load()) /
                 std::chrono::duration<double>(Clock::now() - churn_start).count(),
             "1/s");
}

}  // namespace

int main(int argc, char** argv) {
  set_bench_name("metrics");
  const BenchArgs args(argc, argv,
                       {"targets", "scrapes", "daemon", "bouncer-targets", "inprocess-sizes"});
  const int targets = args.integer("targets", 1000);
  // --bouncer-targets B: one more run, the daemon with `targets` + B targets of which B idle
  // through PgBouncer, scraped while the churn goes on (metrics.<targets + B>.scrape_churn).
  const int bouncer_targets = args.integer("bouncer-targets", 0);
  // The in-process text writer and the store's memory at these sizes too (the curve).
  const std::vector<int> inprocess_sizes = args.integers("inprocess-sizes", {});
  const int scrapes = args.integer("scrapes", 500);
  const std::string daemon_binary = args.text("daemon", "");
  const std::string prefix = "metrics." + std::to_string(targets) + ".";
  try {
    if (daemon_binary.empty()) throw std::runtime_error("--daemon PATH is required");
    raise_open_files(2 * (targets + bouncer_targets) + 500);
    const auto cluster = start_trusted_cluster(targets + 100, {"log_statement = 'none'"});
    breakdown(prefix, targets, std::max(10, scrapes / 10));
    for (const int size : inprocess_sizes)
      if (size != targets) breakdown("metrics." + std::to_string(size) + ".", size, 10);
    {
      BenchDaemon shared(daemon_binary, targets_yaml(targets, cluster->port(), false));
      wait_until_all_up(shared, targets);
      std::string body;
      emit_samples(prefix + "shared_histograms.scrape_idle",
                   timed_scrapes(shared, std::max(10, scrapes / 5), body), "ms",
                   "per_target_histograms: false");
      emit_value(prefix + "shared_histograms.size_bytes", static_cast<double>(body.size()), "B");
      emit_value(prefix + "shared_histograms.series", static_cast<double>(series_count(body)), "1");
      emit_value(prefix + "shared_histograms.histogram_bucket_series",
                 static_cast<double>(bucket_series(body)), "1");
    }
    {
      // 50 scrapers at once against one target (a few KiB a scrape). The test suite only asserts
      // that none fails: their p99 is the CPU queue's, which a loaded machine decides.
      BenchDaemon one(daemon_binary, targets_yaml(1, cluster->port()));
      wait_until_all_up(one, 1);
      emit_samples("metrics.concurrent_50x20.scrape", concurrent_scrapes(one, 50, 20), "ms",
                   "50 scrapers released at once, 20 scrapes each, 1 target");
    }
    {
      BenchDaemon daemon(daemon_binary, targets_yaml(targets, cluster->port()));
      wait_until_all_up(daemon, targets);

      std::string idle_body;
      const auto idle_ms = timed_scrapes(daemon, std::max(10, scrapes / 5), idle_body);
      emit_samples(prefix + "scrape_idle", idle_ms, "ms");
      emit_value(prefix + "size_bytes", static_cast<double>(idle_body.size()), "B");
      emit_value(prefix + "series", static_cast<double>(series_count(idle_body)), "1");
      emit_value(prefix + "histogram_bucket_series", static_cast<double>(bucket_series(idle_body)),
                 "1");

      churned_scrapes(prefix, daemon, *cluster, scrapes);
    }
    if (bouncer_targets > 0) {
      PgBouncer bouncer(PgBouncerSettings{.server_port = cluster->port(),
                                          .server_user = kTrustedRole,
                                          .user = kTrustedRole,
                                          .max_clients = bouncer_targets + 100});
      BenchDaemon big(daemon_binary, targets_yaml(targets, cluster->port(), true, bouncer_targets,
                                                  bouncer.port()));
      wait_until_all_up(big, targets + bouncer_targets);
      const std::string big_prefix = "metrics." + std::to_string(targets + bouncer_targets) + ".";
      std::string body;
      emit_samples(big_prefix + "scrape_idle", timed_scrapes(big, std::max(10, scrapes / 5), body),
                   "ms", std::to_string(bouncer_targets) + " targets through PgBouncer");
      emit_value(big_prefix + "size_bytes", static_cast<double>(body.size()), "B");
      emit_value(big_prefix + "series", static_cast<double>(series_count(body)), "1");
      churned_scrapes(big_prefix, big, *cluster, std::max(20, scrapes / 4));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics benchmark failed: %s\n", e.what());
    return 1;
  }
}