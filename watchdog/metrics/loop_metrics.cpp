#include "metrics/loop_metrics.hpp"

namespace pgwd {

LoopMetrics::LoopMetrics(MetricFamilies& families, const std::string& loop)
    : families_(families),
      lag_(families.event_loop_lag.Add({{"loop", loop}}, MetricFamilies::loop_lag_buckets())) {
  for (CallbackPhase phase : kCallbackPhases)
    slow_[static_cast<std::size_t>(phase)] =
        &families.slow_callbacks.Add({{"loop", loop}, {"phase", std::string(to_string(phase))}});
}

LoopMetrics::~LoopMetrics() {
  if (families_.dropping()) return;  // they go whole
  families_.event_loop_lag.Remove(&lag_);
  for (prometheus::Counter* c : slow_) families_.slow_callbacks.Remove(c);
}

void LoopMetrics::timer_late(Nanos late) {
  lag_.Observe(std::chrono::duration<double>(late).count());
}

void LoopMetrics::slow_callback(CallbackPhase phase) {
  slow_[static_cast<std::size_t>(phase)]->Increment();
}

}  // namespace pgwd
