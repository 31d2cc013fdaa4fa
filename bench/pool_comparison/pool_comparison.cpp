// bench/pool_comparison: on one throwaway cluster, three pools side by side (see
// compared_pools.hpp). Prints a Markdown table: errors users saw, extra round trips the pool
// sent, checkout latency. Run: build/bench/pool_comparison/pool_comparison [--checkouts N]
// [--threads N] [--idle N]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "compared_pools.hpp"
#include "pgwd/pool.hpp"
#include "pgwd/watchdog_thread.hpp"
#include "scenario.hpp"
#include "support/test_cluster.hpp"

using namespace pgwd;
using namespace pgwd::comparison;

int main(int argc, char** argv) {
  ScenarioOptions options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (value <= 0) {
      std::cerr << "pool_comparison: " << flag << " needs a positive number\n";
      return 2;
    }
    if (flag == "--checkouts") {
      options.checkouts = value;
    } else if (flag == "--threads") {
      options.threads = value;
    } else if (flag == "--idle") {
      options.idle = value;
    } else {
      std::cerr << "pool_comparison: unknown flag " << flag
                << " (--checkouts N, --threads N, --idle N)\n";
      return 2;
    }
  }
  try {
    pgwd::testing::TestCluster cluster;
    std::vector<ScenarioResult> results;
    {
      NaivePool naive(cluster.conninfo("cmp_naive"), false);
      results.push_back(run_after_terminate(naive, cluster, "cmp_naive", options));
    }
    {
      NaivePool pinging(cluster.conninfo("cmp_ping"), true);
      results.push_back(run_after_terminate(pinging, cluster, "cmp_ping", options));
    }
    {
      WatchdogThread watchdog;
      PoolOptions pool_options;
      pool_options.dsn = cluster.conninfo("cmp_pgwd");
      pool_options.name = "cmp_pgwd";
      pool_options.max_size = static_cast<std::size_t>(options.idle);
      Pool pool(watchdog, pool_options);
      WatchdogPool ours(pool);
      results.push_back(run_after_terminate(ours, cluster, "cmp_pgwd", options));
      const PoolStats stats = pool.stats();
      std::printf("pgwatchdog pool: %llu dropped while idle (on_death), %llu found dead at "
                  "checkout, %llu found busy\n",
                  static_cast<unsigned long long>(stats.dropped_while_idle),
                  static_cast<unsigned long long>(stats.checkouts_found_dead),
                  static_cast<unsigned long long>(stats.checkouts_found_busy));
    }
    std::printf("%d idle connections, all terminated, then %d x (checkout, SELECT 1, give back) "
                "from %d threads:\n\n%s",
                options.idle, options.checkouts, options.threads, format_table(results).c_str());
    for (const auto& r : results) {
      for (const auto& e : r.first_errors) std::printf("%s saw: %s", r.pool.c_str(), e.c_str());
    }
  } catch (const std::exception& error) {
    std::cerr << "pool_comparison: " << error.what() << '\n';
    return 1;
  }
  return 0;
}
