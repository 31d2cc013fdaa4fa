// bench/pool_comparison: the pools bench (bench/README.md "Pools"). Prints Markdown tables.
//  - terminate (the default): on one throwaway cluster, three pools side by side (see
//    compared_pools.hpp): errors users saw, extra round trips the pool sent, checkout latency,
//    after every idle connection's backend was terminated; once per --idle size.
//  - black-hole: pgwatchdog's pool against a black-holed host (outages.hpp): how late each
//    queued async acquire fails after its acquire_timeout. Needs root, ip and nft.
//  - restart: the three pools looping (checkout, SELECT 1, give back) across pg_ctl restart -m
//    fast (outages.hpp): checkouts tried and failed, the longest wait.
// Run: build/bench/pool_comparison/pool_comparison --help
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "compared_pools.hpp"
#include "outages.hpp"
#include "pgwd/pool.hpp"
#include "pgwd/watchdog_thread.hpp"
#include "scenario.hpp"
#include "support/test_cluster.hpp"

using namespace pgwd;
using namespace pgwd::comparison;

namespace {

constexpr std::string_view kUsage =
    "Usage: pool_comparison [--scenario terminate|black-hole|restart|all] [--idle N[,N...]]\n"
    "                       [--checkouts N] [--threads N] [--acquires N] [--restarts N]\n"
    "                       [--restart-acquire-timeout MS] [--connector-threads N]\n"
    "  --scenario   what to run (default terminate; all: the three, in that order)\n"
    "  --idle       terminate: idle connections terminated before the checkouts, one run per\n"
    "               size (default 20)\n"
    "  --checkouts  terminate: checkouts after the terminate (default 1000)\n"
    "  --threads    terminate and restart: threads checking out (default 4)\n"
    "  --acquires   black-hole: async acquires queued, 1 ms apart (default 500)\n"
    "  --restarts   restart: pg_ctl restart -m fast per pool (default 3)\n"
    "  --restart-acquire-timeout  restart: pgwatchdog's acquire_timeout in ms (default 30000)\n"
    "  --connector-threads  the watchdog's connector threads (WatchdogOptions; default 0: its\n"
    "               connects, SCRAM included, run on its watch loop)\n";

struct Arguments {
  std::string scenario = "terminate";
  std::vector<int> idle_sizes{20};
  ScenarioOptions terminate;
  BlackHoleOptions black_hole;
  RestartOptions restart;
  /// The pgwatchdog pool's acquire_timeout across restarts: by default longer than any restart
  /// here.
  std::chrono::milliseconds restart_acquire_timeout{30000};
  /// WatchdogOptions::connector_threads of every scenario's watchdog.
  std::size_t connector_threads = 0;
};

WatchdogOptions watchdog_options(std::size_t connector_threads) {
  WatchdogOptions options;
  options.connector_threads = connector_threads;
  return options;
}

int positive(std::string_view flag, std::string_view text) {
  const std::string copy(text);
  char* end = nullptr;
  const long value = std::strtol(copy.c_str(), &end, 10);
  if (copy.empty() || *end != '\0' || value <= 0 || value > 1000000) {
    throw std::invalid_argument(std::string(flag) + " needs a positive number, not '" + copy + "'");
  }
  return static_cast<int>(value);
}

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--scenario") {
      if (value != "terminate" && value != "black-hole" && value != "restart" && value != "all")
        throw std::invalid_argument("unknown scenario '" + std::string(value) + "'");
      a.scenario = value;
    } else if (flag == "--idle") {
      a.idle_sizes.clear();
      std::string_view rest = value;
      for (;;) {
        const auto comma = rest.find(',');
        a.idle_sizes.push_back(positive(flag, rest.substr(0, comma)));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (flag == "--checkouts") {
      a.terminate.checkouts = positive(flag, value);
    } else if (flag == "--threads") {
      a.terminate.threads = positive(flag, value);
      a.restart.threads = a.terminate.threads;
    } else if (flag == "--acquires") {
      a.black_hole.acquires = positive(flag, value);
    } else if (flag == "--restarts") {
      a.restart.restarts = positive(flag, value);
    } else if (flag == "--restart-acquire-timeout") {
      a.restart_acquire_timeout = std::chrono::milliseconds(positive(flag, value));
    } else if (flag == "--connector-threads") {
      a.connector_threads = static_cast<std::size_t>(positive(flag, value));
      a.black_hole.connector_threads = a.connector_threads;
    } else {
      throw std::invalid_argument("unknown flag " + std::string(flag));
    }
  }
  return a;
}

void run_terminate(const ScenarioOptions& options, std::size_t connector_threads) {
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
    WatchdogThread watchdog(watchdog_options(connector_threads));
    PoolOptions pool_options;
    pool_options.dsn = cluster.conninfo("cmp_pgwd");
    pool_options.name = "cmp_pgwd";
    pool_options.max_size = static_cast<std::size_t>(options.idle);
    Pool pool(watchdog, pool_options);
    WatchdogPool ours(pool);
    results.push_back(run_after_terminate(ours, cluster, "cmp_pgwd", options));
    const PoolStats stats = pool.stats();
    std::printf(
        "pgwatchdog pool: %llu dropped while idle (on_death), %llu found dead at "
        "checkout, %llu found busy\n",
        static_cast<unsigned long long>(stats.dropped_while_idle),
        static_cast<unsigned long long>(stats.checkouts_found_dead),
        static_cast<unsigned long long>(stats.checkouts_found_busy));
  }
  std::printf(
      "%d idle connections, all terminated, then %d x (checkout, SELECT 1, give back) "
      "from %d threads:\n\n%s",
      options.idle, options.checkouts, options.threads, format_table(results).c_str());
  std::printf("connections opened again (backends at the end):");
  for (const auto& r : results) std::printf(" %s %d;", r.pool.c_str(), r.backends_after);
  std::printf("\ncheckouts over 1 ms:");
  for (const auto& r : results) std::printf(" %s %d;", r.pool.c_str(), r.checkouts_over_1ms);
  std::printf("\nthe 12 slowest checkouts (us; the p99 is the 10th):\n");
  for (const auto& r : results) {
    std::printf("  %s:", r.pool.c_str());
    for (const double us : r.slowest_us) std::printf(" %.0f", us);
    std::printf("\n");
  }
  for (const auto& r : results) {
    for (const auto& e : r.first_errors) std::printf("%s saw: %s", r.pool.c_str(), e.c_str());
  }
}

// False if namespaces cannot be made here (said on stdout).
bool run_black_hole_scenario(const BlackHoleOptions& options) {
  if (const std::string why = unavailable_black_hole(); !why.empty()) {
    std::printf("black hole: SKIPPED, network namespaces unavailable here: %s\n", why.c_str());
    return false;
  }
  const BlackHoleResult result = run_black_hole(options);
  std::printf(
      "\nBlack-holed host (network namespace, nft DROP) before the first connection: %d "
      "async acquires queued %lld ms apart, acquire_timeout %lld ms, connect_timeout "
      "%lld ms; lateness = time to failure - acquire_timeout:\n\n%s",
      result.acquires, static_cast<long long>(options.spacing.count()),
      static_cast<long long>(options.acquire_timeout.count()),
      static_cast<long long>(options.connect_timeout.count()),
      format_black_hole(options, result).c_str());
  if (!result.first_error.empty()) std::printf("first error: %s\n", result.first_error.c_str());
  return true;
}

void run_restart_scenario(const RestartOptions& options, std::chrono::milliseconds acquire_timeout,
                          std::size_t connector_threads) {
  pgwd::testing::TestCluster cluster;
  std::vector<RestartResult> results;
  {
    NaivePool naive(cluster.conninfo("rst_naive"), false);
    results.push_back(run_across_restarts(naive, cluster, options));
  }
  {
    NaivePool pinging(cluster.conninfo("rst_ping"), true);
    results.push_back(run_across_restarts(pinging, cluster, options));
  }
  PoolStats stats;
  {
    WatchdogThread watchdog(watchdog_options(connector_threads));
    PoolOptions pool_options;
    pool_options.dsn = cluster.conninfo("rst_pgwd");
    pool_options.name = "rst_pgwd";
    pool_options.acquire_timeout = acquire_timeout;
    Pool pool(watchdog, pool_options);
    WatchdogPool ours(pool);
    results.push_back(run_across_restarts(ours, cluster, options));
    stats = pool.stats();
  }
  std::printf(
      "\n%d x pg_ctl restart -m fast per pool, %lld ms apart, while %d threads loop "
      "(checkout, SELECT 1, give back); pgwatchdog's acquire_timeout %lld ms, a failed "
      "checkout tried again after %lld ms:\n\n%s",
      options.restarts, static_cast<long long>(options.between.count()), options.threads,
      static_cast<long long>(acquire_timeout.count()),
      static_cast<long long>(options.retry_pause.count()), format_restart_table(results).c_str());
  std::printf(
      "pgwatchdog pool: %llu connect failures, %llu refusals while starting (57P03), "
      "%llu dropped while idle, %llu found dead at checkout\n",
      static_cast<unsigned long long>(stats.connect_failures),
      static_cast<unsigned long long>(stats.connects_server_starting),
      static_cast<unsigned long long>(stats.dropped_while_idle),
      static_cast<unsigned long long>(stats.checkouts_found_dead));
  for (const auto& r : results) {
    for (const auto& e : r.first_errors) {
      std::printf("%s saw: %s%s", r.pool.c_str(), e.c_str(),
                  !e.empty() && e.back() == '\n' ? "" : "\n");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Arguments arguments;
  try {
    arguments = parse(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "pool_comparison: " << error.what() << "\n" << kUsage;
    return 2;
  }
  // The pools' and the watchdog's log lines on stderr: stdout has the tables alone.
  spdlog::set_default_logger(spdlog::stderr_color_mt("pool_comparison"));
  const std::string& scenario = arguments.scenario;
  bool skipped = false;
  if (arguments.connector_threads > 0) {
    std::printf("The watchdog's connects run on %zu connector threads (not its watch loop).\n",
                arguments.connector_threads);
  }
  try {
    if (scenario == "terminate" || scenario == "all") {
      for (const int idle : arguments.idle_sizes) {
        ScenarioOptions options = arguments.terminate;
        options.idle = idle;
        run_terminate(options, arguments.connector_threads);
      }
    }
    if (scenario == "black-hole" || scenario == "all") {
      skipped = !run_black_hole_scenario(arguments.black_hole);
    }
    if (scenario == "restart" || scenario == "all")
      run_restart_scenario(arguments.restart, arguments.restart_acquire_timeout,
                           arguments.connector_threads);
  } catch (const std::exception& error) {
    std::cerr << "pool_comparison: " << error.what() << '\n';
    return 1;
  }
  // Only the black hole asked for alone and impossible here: nothing was measured.
  return skipped && scenario == "black-hole" ? 77 : 0;
}
