#include "outages.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "pgwd/pool.hpp"
#include "pgwd/watchdog_thread.hpp"
#include "scenario.hpp"
#include "support/network_namespace.hpp"
#include "support/sched_stat.hpp"
#include "support/test_cluster.hpp"

namespace pgwd::comparison {
namespace {

using Clock = std::chrono::steady_clock;
using pgwd::testing::NetworkNamespace;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

pgwd::testing::ClusterSettings inside(const NetworkNamespace& ns) {
  pgwd::testing::ClusterSettings settings;
  settings.listen_address = ns.server_address();
  settings.command_prefix = ns.exec_prefix();
  settings.hba_lines = {"host all all " + ns.host_address() + "/32 scram-sha-256"};
  return settings;
}

}  // namespace

std::string unavailable_black_hole() {
  return NetworkNamespace::unavailable_reason().value_or("");
}

BlackHoleResult run_black_hole(const BlackHoleOptions& options) {
  if (const std::string why = unavailable_black_hole(); !why.empty()) {
    throw std::runtime_error("network namespaces unavailable here: " + why);
  }
  // Declared in the order they must be made; destroyed in reverse (the cluster is stopped
  // before its namespace goes).
  NetworkNamespace ns;
  pgwd::testing::TestCluster cluster(inside(ns));
  WatchdogOptions watchdog_options;
  watchdog_options.connector_threads = options.connector_threads;
  WatchdogThread watchdog(watchdog_options);
  ns.black_hole();

  PoolOptions pool_options;
  pool_options.dsn = cluster.conninfo("cmp_black_hole");
  pool_options.name = "cmp_black_hole";
  pool_options.acquire_timeout = options.acquire_timeout;
  pool_options.connect_timeout = options.connect_timeout;
  Pool pool(watchdog, pool_options);

  struct Outcome {
    Clock::duration took{};
    bool leased = false;
    bool timed_out = false;
    std::string error;
  };
  std::mutex mutex;
  std::condition_variable all_done;
  std::vector<Outcome> outcomes;
  outcomes.reserve(static_cast<std::size_t>(options.acquires));
  std::size_t openings_at_end = 0;

  const pgwd::testing::ProcessCpuWaitSince cpu_wait(::getpid());
  const auto started = Clock::now();
  for (int i = 0; i < options.acquires; ++i) {
    std::this_thread::sleep_until(started + i * options.spacing);
    const auto queued = Clock::now();
    pool.acquire_async([&, queued](Lease lease, std::exception_ptr error) {
      Outcome outcome;
      outcome.took = Clock::now() - queued;
      outcome.leased = static_cast<bool>(lease);
      try {
        if (error) std::rethrow_exception(error);
      } catch (const PoolTimeout& timeout) {
        outcome.timed_out = true;
        outcome.error = timeout.what();
      } catch (const std::exception& other) {
        outcome.error = other.what();
      }
      lease = Lease{};  // given back here, not under our mutex
      const std::lock_guard lock(mutex);
      outcomes.push_back(std::move(outcome));
      if (outcomes.size() == static_cast<std::size_t>(options.acquires)) {
        openings_at_end = pool.stats().opening;
        all_done.notify_all();
      }
    });
  }
  {
    std::unique_lock lock(mutex);
    const auto deadline = Clock::now() + options.acquire_timeout + std::chrono::seconds(30);
    if (!all_done.wait_until(lock, deadline, [&] {
          return outcomes.size() == static_cast<std::size_t>(options.acquires);
        })) {
      throw std::runtime_error(
          "black hole: " +
          std::to_string(static_cast<std::size_t>(options.acquires) - outcomes.size()) +
          " acquires never completed");
    }
  }

  BlackHoleResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  result.cpu_wait_ms = ms(cpu_wait.waited());
  result.acquires = options.acquires;
  result.openings_hanging = openings_at_end;
  std::vector<double> late_us;
  for (const auto& o : outcomes) {
    if (o.leased) ++result.leased;
    if (o.timed_out) {
      ++result.timed_out;
    } else if (!o.leased) {
      ++result.other_errors;
    }
    if (!o.leased && result.first_error.empty()) result.first_error = o.error;
    const auto late = o.took - options.acquire_timeout;
    if (late < Clock::duration::zero()) ++result.early;
    if (!o.leased && late <= options.bound) ++result.within_bound;
    late_us.push_back(std::chrono::duration<double, std::micro>(late).count());
  }
  std::sort(late_us.begin(), late_us.end());
  result.late_p50_us = percentile(late_us, 0.50);
  result.late_p99_us = percentile(late_us, 0.99);
  result.late_max_us = late_us.empty() ? 0 : late_us.back();
  return result;
}

RestartResult run_across_restarts(ComparedPool& pool, pgwd::testing::TestCluster& cluster,
                                  const RestartOptions& options) {
  RestartResult result;
  result.pool = pool.name();
  std::atomic<bool> stop{false};
  std::atomic<bool> restarting{false};
  std::mutex mutex;
  std::vector<double> waits_ms;
  std::vector<std::string> acquire_messages;
  std::vector<std::string> query_messages;

  const auto started = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < options.threads; ++t) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      int tried = 0;
      int during = 0;
      int acquire_failures = 0;
      int query_errors = 0;
      std::vector<std::string> acquire_errors;
      std::vector<std::string> query_errors_seen;
      while (!stop.load()) {
        ++tried;
        if (restarting.load()) ++during;
        const auto before = Clock::now();
        std::unique_ptr<Checkout> checkout;
        try {
          checkout = pool.checkout();
        } catch (const std::exception& error) {
          mine.push_back(ms(Clock::now() - before));
          ++acquire_failures;
          if (acquire_errors.size() < 3) acquire_errors.emplace_back(error.what());
          std::this_thread::sleep_for(options.retry_pause);
          continue;
        }
        mine.push_back(ms(Clock::now() - before));
        PGresult* answer = PQexec(checkout->connection(), "SELECT 1");
        if (PQresultStatus(answer) != PGRES_TUPLES_OK) {
          ++query_errors;
          if (query_errors_seen.size() < 3)
            query_errors_seen.emplace_back(PQerrorMessage(checkout->connection()));
        }
        PQclear(answer);
      }
      const std::lock_guard lock(mutex);
      waits_ms.insert(waits_ms.end(), mine.begin(), mine.end());
      result.tried += tried;
      result.during_restart += during;
      result.acquire_failures += acquire_failures;
      result.query_errors += query_errors;
      for (auto& m : acquire_errors) acquire_messages.push_back("checkout: " + std::move(m));
      for (auto& m : query_errors_seen) query_messages.push_back("SELECT 1: " + std::move(m));
    });
  }
  try {
    for (int r = 0; r < options.restarts; ++r) {
      std::this_thread::sleep_for(options.between);
      const auto before = Clock::now();
      restarting = true;
      cluster.restart(pgwd::testing::ShutdownMode::fast);
      restarting = false;
      result.longest_restart_ms = std::max(result.longest_restart_ms, ms(Clock::now() - before));
    }
    std::this_thread::sleep_for(options.between);
  } catch (...) {
    stop = true;
    for (auto& thread : threads) thread.join();
    throw;
  }
  stop = true;
  for (auto& thread : threads) thread.join();
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::sort(waits_ms.begin(), waits_ms.end());
  result.longest_wait_ms = waits_ms.empty() ? 0 : waits_ms.back();
  result.wait_p99_ms = percentile(waits_ms, 0.99);
  for (auto* messages : {&acquire_messages, &query_messages}) {
    for (std::size_t i = 0; i < messages->size() && i < 3; ++i)
      result.first_errors.push_back((*messages)[i]);
  }
  return result;
}

std::string format_black_hole(const BlackHoleOptions& options, const BlackHoleResult& r) {
  char out[1024];
  std::snprintf(out, sizeof out,
                "| acquires | PoolTimeout | leased | other errors | failed early | within "
                "+%lld ms | late p50 | p99 | max | openings hanging | CPU wait | run |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
                "| %d | %d | %d | %d | %d | %d | %.2f ms | %.2f ms | %.2f ms | %zu | %.1f ms | "
                "%.2f s |\n",
                static_cast<long long>(options.bound.count()), r.acquires, r.timed_out, r.leased,
                r.other_errors, r.early, r.within_bound, r.late_p50_us / 1000, r.late_p99_us / 1000,
                r.late_max_us / 1000, r.openings_hanging, r.cpu_wait_ms, r.seconds);
  return out;
}

std::string format_restart_table(const std::vector<RestartResult>& results) {
  std::string out =
      "| pool | checkouts tried | begun during a restart | checkouts failed | SELECT 1 failed | "
      "longest checkout | p99 | longest restart | run |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  char line[256];
  for (const auto& r : results) {
    std::snprintf(line, sizeof line,
                  "| %s | %d | %d | %d | %d | %.1f ms | %.1f ms | %.0f ms | %.1f s |\n",
                  r.pool.c_str(), r.tried, r.during_restart, r.acquire_failures, r.query_errors,
                  r.longest_wait_ms, r.wait_p99_ms, r.longest_restart_ms, r.seconds);
    out += line;
  }
  return out;
}

}  // namespace pgwd::comparison
