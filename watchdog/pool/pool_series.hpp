#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/store.hpp"

namespace pgwd {

/// The series of one pool (docs/metrics.md: pgwatchdog_pool_*), in the watchdog's store,
/// labelled `pool`; all go with it. Thread-safe (atomics, and a mutex for the per-cause
/// counters, made when a cause is first seen).
class PoolSeries {
 public:
  PoolSeries(Store& store, const std::string& pool);
  PoolSeries(const PoolSeries&) = delete;
  PoolSeries& operator=(const PoolSeries&) = delete;

  void set_sizes(std::size_t idle, std::size_t in_use, std::size_t opening, std::size_t waiters);
  void observe_acquire(double seconds) { acquire_.observe(seconds); }
  void count_found_dead() { found_dead_.increment(); }
  void count_given_to_next_asker() { given_to_next_asker_.increment(); }
  /// A connection the pool closed, by why: a Cause name (server_shutdown, closed, timed_out,
  /// ...), or server_lost, max_lifetime, broken, rollback_failed, lend_refused,
  /// watchdog_stopped, discarded.
  void count_replaced(std::string_view cause);

 private:
  Store& store_;
  std::string pool_;
  Gauge idle_;
  Gauge in_use_;
  Gauge opening_;
  Gauge waiters_;
  Histogram acquire_;
  Counter found_dead_;
  Counter given_to_next_asker_;
  RowHandle row_;
  std::mutex replaced_mutex_;
  std::map<std::string, Counter, std::less<>> replaced_;
  std::vector<RowHandle> replaced_rows_;
};

}  // namespace pgwd
