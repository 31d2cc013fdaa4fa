#pragma once

// The scenario of docs/lending-and-pool.md "Three pools side by side", run the same way on each
// compared pool: `idle` connections made idle in the pool, every one of their backends terminated
// (pg_terminate_backend, waited for until pg_stat_activity no longer shows them), then `checkouts`
// x (checkout, SELECT 1, give back) spread over `threads` threads. Shared by bench/pool_comparison
// and the integration test (which asserts the correctness columns, never latency).

#include <string>
#include <vector>

#include "compared_pools.hpp"

namespace pgwd::testing {
class TestCluster;
}

namespace pgwd::comparison {

struct ScenarioOptions {
  int idle = 20;
  int checkouts = 1000;
  int threads = 4;
};

struct ScenarioResult {
  std::string pool;
  int errors = 0;  ///< SELECT 1 that failed: what the pool's users see
  int successes = 0;
  int statements = 0;         ///< statements of the pool's sessions in the server's log
  int extra_round_trips = 0;  ///< statements beyond the users' own successful SELECT 1
  double checkout_mean_us = 0;
  double checkout_p50_us = 0;
  double checkout_p99_us = 0;
  double seconds = 0;  ///< the whole run of checkouts
  /// The pool's backends when the checkouts ended: the connections it opened again (none of
  /// the terminated ones is left).
  int backends_after = 0;
  int checkouts_over_1ms = 0;  ///< how many checkouts the p99 may be made of
  /// The 12 slowest checkouts, slowest first (the p99 of 1000 is the 10th): what it is made of.
  std::vector<double> slowest_us;
  std::vector<std::string> first_errors;  ///< up to three, as users saw them
};

/// `application_name` must be the one in the pool's DSN: it finds the pool's backends and
/// statements. Throws std::runtime_error if the backends do not go away within 10 s.
ScenarioResult run_after_terminate(ComparedPool& pool, const pgwd::testing::TestCluster& cluster,
                                   const std::string& application_name,
                                   const ScenarioOptions& options = {});

/// The value at fraction `p` (0..1) of an ascending vector (the nearest rank below); 0 if empty.
double percentile(const std::vector<double>& sorted, double p);

/// The table the bench prints (and the README shows).
std::string format_table(const std::vector<ScenarioResult>& results);

}  // namespace pgwd::comparison
