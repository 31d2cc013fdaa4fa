#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace pgwd {

/// The series of one pool (docs/metrics.md: pgwatchdog_pool_*), in the watchdog's registry.
/// The families are shared by every pool on a registry (prometheus-cpp returns the family
/// already registered under a name); the series, labelled `pool`, are removed with the pool.
/// Thread-safe (prometheus-cpp's own guarantee, and a mutex for the per-cause counters).
class PoolMetrics {
 public:
  PoolMetrics(std::shared_ptr<prometheus::Registry> registry, const std::string& pool);
  ~PoolMetrics();
  PoolMetrics(const PoolMetrics&) = delete;
  PoolMetrics& operator=(const PoolMetrics&) = delete;

  void set_sizes(std::size_t idle, std::size_t in_use, std::size_t opening, std::size_t waiters);
  void observe_acquire(double seconds);
  void count_found_dead();
  /// A connection the pool closed, by why: a Cause name (server_shutdown, closed, timed_out,
  /// ...), or server_lost, max_lifetime, broken, rollback_failed, lend_refused,
  /// watchdog_stopped, discarded.
  void count_replaced(std::string_view cause);

  static const prometheus::Histogram::BucketBoundaries& acquire_buckets();

 private:
  std::shared_ptr<prometheus::Registry> registry_;  // outlives the families
  std::string pool_;
  prometheus::Family<prometheus::Gauge>& connections_;
  prometheus::Family<prometheus::Gauge>& waiters_family_;
  prometheus::Family<prometheus::Histogram>& acquire_family_;
  prometheus::Family<prometheus::Counter>& found_dead_family_;
  prometheus::Family<prometheus::Counter>& replaced_family_;
  prometheus::Gauge& idle_;
  prometheus::Gauge& in_use_;
  prometheus::Gauge& opening_;
  prometheus::Gauge& waiters_;
  prometheus::Histogram& acquire_;
  prometheus::Counter& found_dead_;
  std::mutex replaced_mutex_;
  std::map<std::string, prometheus::Counter*, std::less<>> replaced_;
};

}  // namespace pgwd
