#pragma once

// Two outages for the pools bench (bench/README.md "Pools"), beside the mass terminate of
// scenario.hpp:
//  - a black-holed host: the server inside a network namespace whose traffic nft drops (no FIN,
//    no RST, no SYN-ACK), so every opening hangs; async acquires queued one after another must
//    each fail at their own acquire_timeout, not when an opening gives up. pgwatchdog's pool only:
//    the compared pools have no acquire deadline (they open on the caller's thread and block).
//  - a server restart (pg_ctl restart -m fast) while threads loop (checkout, SELECT 1, give
//    back): with an acquire_timeout longer than the restart, no acquire should fail.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "compared_pools.hpp"

namespace pgwd::testing {
class TestCluster;
}

namespace pgwd::comparison {

struct BlackHoleOptions {
  /// Async acquires queued while the host is dark, one every `spacing` (so that their deadlines
  /// differ: the housekeeper must wake at each one).
  int acquires = 500;
  std::chrono::milliseconds spacing{1};
  std::chrono::milliseconds acquire_timeout{200};
  /// Longer than the whole run: the openings still hang when every acquire is due.
  std::chrono::milliseconds connect_timeout{5000};
  /// Each acquire's lateness is judged against this.
  std::chrono::milliseconds bound{10};
  /// WatchdogOptions::connector_threads.
  std::size_t connector_threads = 0;
};

struct BlackHoleResult {
  int acquires = 0;
  int timed_out = 0;  ///< completed with PoolTimeout
  int leased = 0;     ///< got a connection (none should: nothing answers)
  int other_errors = 0;
  int within_bound = 0;  ///< failed no later than acquire_timeout + bound
  int early = 0;         ///< failed before acquire_timeout (none should)
  /// Time to failure minus acquire_timeout, in microseconds.
  double late_p50_us = 0;
  double late_p99_us = 0;
  double late_max_us = 0;
  std::size_t openings_hanging = 0;  ///< PoolStats::opening when the last acquire failed
  double cpu_wait_ms = 0;            ///< what this process's threads waited for a CPU meanwhile
  double seconds = 0;
  std::string first_error;
};

/// Makes a network namespace, a throwaway cluster inside it, a WatchdogThread and a pgwd::Pool
/// (default options but acquire_timeout and connect_timeout), black-holes the host before the
/// first connection, and queues the acquires. Throws std::runtime_error if namespaces cannot be
/// made here (not root, no nft); see unavailable_black_hole().
BlackHoleResult run_black_hole(const BlackHoleOptions& options = {});
/// Why run_black_hole cannot run here, or "" if it can.
std::string unavailable_black_hole();

struct RestartOptions {
  int restarts = 3;
  int threads = 4;
  /// The loop runs this long before each restart, and after the last one.
  std::chrono::milliseconds between{500};
  /// A checkout that threw is tried again after this (the naive pools fail at once while the
  /// server is down; this keeps them from spinning).
  std::chrono::milliseconds retry_pause{10};
};

struct RestartResult {
  std::string pool;
  int tried = 0;               ///< checkouts begun
  int during_restart = 0;      ///< of which begun while a pg_ctl restart ran
  int acquire_failures = 0;    ///< checkout threw (PoolTimeout, connect error)
  int query_errors = 0;        ///< the checkout succeeded but SELECT 1 failed
  double longest_wait_ms = 0;  ///< the longest checkout, failed or not
  double wait_p99_ms = 0;
  double longest_restart_ms = 0;  ///< the longest pg_ctl restart -m fast (-w: until it accepts)
  double seconds = 0;
  std::vector<std::string> first_errors;  ///< up to three of each kind, as users saw them
};

/// Loops (checkout, SELECT 1, give back) on `threads` threads across `restarts` x pg_ctl
/// restart -m fast of `cluster`.
RestartResult run_across_restarts(ComparedPool& pool, pgwd::testing::TestCluster& cluster,
                                  const RestartOptions& options = {});

std::string format_black_hole(const BlackHoleOptions& options, const BlackHoleResult& result);
std::string format_restart_table(const std::vector<RestartResult>& results);

}  // namespace pgwd::comparison
