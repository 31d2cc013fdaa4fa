#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace pgwd {

/// Every metric pgwatchdog exports, declared in one place (DESIGN §5 is the contract: names,
/// types and labels are public). Series per target live in TargetMetrics.
/// Thread-safe for scrapes (prometheus-cpp's own guarantee); updated only from the loop thread.
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
  prometheus::Family<prometheus::Histogram>& event_loop_lag_family;
  prometheus::Family<prometheus::Gauge>& build_info;

  prometheus::Histogram& event_loop_lag;

  static const prometheus::Histogram::BucketBoundaries& probe_duration_buckets();
  static const prometheus::Histogram::BucketBoundaries& outage_buckets();
};

}  // namespace pgwd
