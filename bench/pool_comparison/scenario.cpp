#include "scenario.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "support/test_cluster.hpp"

namespace pgwd::comparison {
namespace {

using Clock = std::chrono::steady_clock;

/// Every pool starts with exactly `count` idle connections: checked out together, given back.
void fill(ComparedPool& pool, int count) {
  std::vector<std::unique_ptr<Checkout>> held;
  for (int i = 0; i < count; ++i) held.push_back(pool.checkout());
  held.clear();
  // pgwd::Pool lends them on give-back; the naive pools push them back at once.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (pool.idle() < static_cast<std::size_t>(count)) {
    if (Clock::now() > deadline) throw std::runtime_error(pool.name() + ": did not fill");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

/// Terminates the pool's backends and waits until they have exited. Only those: pgwd::Pool
/// opens replacements, under the same application_name, as soon as it reads the deaths.
void terminate_all(const pgwd::testing::TestCluster& cluster, const std::string& application) {
  const std::vector<int> terminated = cluster.backend_pids(application);
  cluster.terminate_backends(application);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (cluster.any_backend_left(application, terminated)) {
    if (Clock::now() > deadline) throw std::runtime_error("terminated backends did not exit");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto at = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[at];
}

ScenarioResult run_after_terminate(ComparedPool& pool, const pgwd::testing::TestCluster& cluster,
                                   const std::string& application_name,
                                   const ScenarioOptions& options) {
  fill(pool, options.idle);
  terminate_all(cluster, application_name);
  const int statements_before = cluster.count_statements(application_name);
  const int pings_before = pool.extra_round_trips();

  ScenarioResult result;
  result.pool = pool.name();
  std::mutex mutex;
  std::vector<double> latencies_us;
  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    const int share =
        options.checkouts / options.threads + (t < options.checkouts % options.threads);
    threads.emplace_back([&, share] {
      std::vector<double> mine;
      int errors = 0;
      int successes = 0;
      std::vector<std::string> messages;
      for (int i = 0; i < share; ++i) {
        const auto before = Clock::now();
        auto checkout = pool.checkout();
        mine.push_back(std::chrono::duration<double, std::micro>(Clock::now() - before).count());
        PGresult* answer = PQexec(checkout->connection(), "SELECT 1");
        if (PQresultStatus(answer) == PGRES_TUPLES_OK) {
          ++successes;
        } else {
          ++errors;
          if (messages.size() < 3) messages.emplace_back(PQerrorMessage(checkout->connection()));
        }
        PQclear(answer);
      }
      const std::lock_guard lock(mutex);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
      result.errors += errors;
      result.successes += successes;
      for (auto& m : messages) {
        if (result.first_errors.size() < 3) result.first_errors.push_back(std::move(m));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  result.statements = cluster.count_statements(application_name) - statements_before;
  result.backends_after = static_cast<int>(cluster.backend_pids(application_name).size());
  result.extra_round_trips =
      std::max(result.statements - result.successes, pool.extra_round_trips() - pings_before);
  std::sort(latencies_us.begin(), latencies_us.end());
  result.checkout_mean_us = latencies_us.empty()
                                ? 0
                                : std::accumulate(latencies_us.begin(), latencies_us.end(), 0.0) /
                                      static_cast<double>(latencies_us.size());
  result.checkouts_over_1ms = static_cast<int>(
      latencies_us.end() - std::upper_bound(latencies_us.begin(), latencies_us.end(), 1000.0));
  result.slowest_us.assign(
      latencies_us.rbegin(),
      latencies_us.rbegin() +
          static_cast<std::ptrdiff_t>(std::min<std::size_t>(12, latencies_us.size())));
  result.checkout_p50_us = percentile(latencies_us, 0.50);
  result.checkout_p99_us = percentile(latencies_us, 0.99);
  return result;
}

std::string format_table(const std::vector<ScenarioResult>& results) {
  std::string out =
      "| pool | errors users saw | extra round trips | checkout mean | p50 | p99 | run |\n"
      "|---|---:|---:|---:|---:|---:|---:|\n";
  char line[256];
  for (const auto& r : results) {
    std::snprintf(line, sizeof line, "| %s | %d | %d | %.1f us | %.1f us | %.1f us | %.2f s |\n",
                  r.pool.c_str(), r.errors, r.extra_round_trips, r.checkout_mean_us,
                  r.checkout_p50_us, r.checkout_p99_us, r.seconds);
    out += line;
  }
  return out;
}

}  // namespace pgwd::comparison
