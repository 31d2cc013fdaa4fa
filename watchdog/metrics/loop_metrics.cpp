#include "metrics/loop_metrics.hpp"

namespace pgwd {

LoopMetrics::LoopMetrics(MetricFamilies& families, const std::string& loop, bool shared_histograms)
    : families_(families),
      lag_(families.event_loop_lag.Add({{"loop", loop}}, MetricFamilies::loop_lag_buckets())) {
  if (shared_histograms)
    shared_ = SharedHistograms{
        &families.probe_duration.Add({{"loop", loop}}, MetricFamilies::probe_duration_buckets()),
        &families.outage.Add({{"loop", loop}}, MetricFamilies::outage_buckets())};
  for (CallbackPhase phase : kCallbackPhases)
    slow_[static_cast<std::size_t>(phase)] =
        &families.slow_callbacks.Add({{"loop", loop}, {"phase", std::string(to_string(phase))}});
}

LoopMetrics::~LoopMetrics() {
  if (families_.dropping()) return;  // they go whole
  families_.event_loop_lag.Remove(&lag_);
  for (prometheus::Counter* c : slow_) families_.slow_callbacks.Remove(c);
  if (shared_) {
    families_.probe_duration.Remove(shared_->probe_duration);
    families_.outage.Remove(shared_->outage);
  }
}

void LoopMetrics::timer_late(Nanos late) {
  lag_.Observe(std::chrono::duration<double>(late).count());
}

void LoopMetrics::slow_callback(CallbackPhase phase) {
  slow_[static_cast<std::size_t>(phase)]->Increment();
}

}  // namespace pgwd
