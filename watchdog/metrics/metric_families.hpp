#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>

namespace pgwd {

/// Every metric pgwatchdog exports, declared in one place (docs/metrics.md is the contract: names,
/// types and labels are public). One instance per registry, shared by every Watchdog on it
/// (RegistryShare); series per target live in TargetMetrics, per watchdog in LoopMetrics.
/// Thread-safe (prometheus-cpp's own guarantee): scrapes and several watchdogs' loops at once.
class MetricFamilies {
 public:
  explicit MetricFamilies(prometheus::Registry& registry);
  MetricFamilies(const MetricFamilies&) = delete;
  MetricFamilies& operator=(const MetricFamilies&) = delete;

  prometheus::Family<prometheus::Gauge>& up;
  prometheus::Family<prometheus::Gauge>& connections;
  prometheus::Family<prometheus::Gauge>& in_hot_standby;
  prometheus::Family<prometheus::Counter>& disconnects;
  prometheus::Family<prometheus::Counter>& reconnects;
  prometheus::Family<prometheus::Counter>& connect_failures;
  prometheus::Family<prometheus::Counter>& wakeups;
  prometheus::Family<prometheus::Counter>& probes;
  prometheus::Family<prometheus::Histogram>& probe_duration;
  prometheus::Family<prometheus::Histogram>& outage;
  prometheus::Family<prometheus::Counter>& notifications;
  prometheus::Family<prometheus::Counter>& notices;
  prometheus::Family<prometheus::Counter>& server_changes;
  prometheus::Family<prometheus::Histogram>& event_loop_lag;
  prometheus::Family<prometheus::Counter>& slow_callbacks;
  prometheus::Family<prometheus::Gauge>& build_info;
  // Connections hosts lend (pgwd/lending.hpp), by the loans' target; see LendingMetrics.
  prometheus::Family<prometheus::Gauge>& lent_connections;
  prometheus::Family<prometheus::Counter>& lent_deaths;
  prometheus::Family<prometheus::Counter>& lent_take_backs;
  prometheus::Family<prometheus::Counter>& lent_probes;
  prometheus::Family<prometheus::Counter>& lent_notifications;
  prometheus::Family<prometheus::Counter>& server_lost;

  /// The families are about to be removed from the registry whole (RegistryShare::
  /// close_if_sole): series need not, and must not, be removed one by one any more.
  void begin_dropping() noexcept { dropping_.store(true, std::memory_order_relaxed); }
  bool dropping() const noexcept { return dropping_.load(std::memory_order_relaxed); }
  /// Removes every family from `registry`, which frees them and their series.
  void unregister(prometheus::Registry& registry);

  static const prometheus::Histogram::BucketBoundaries& probe_duration_buckets();
  static const prometheus::Histogram::BucketBoundaries& outage_buckets();
  static const prometheus::Histogram::BucketBoundaries& loop_lag_buckets();

 private:
  std::atomic<bool> dropping_{false};
};

}  // namespace pgwd
