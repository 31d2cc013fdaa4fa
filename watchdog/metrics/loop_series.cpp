#include "metrics/loop_series.hpp"

#include "metrics/families.hpp"

namespace pgwd {

LoopSeries::LoopSeries(Store& store, const std::string& loop, bool shared_histograms) {
  auto row = std::make_shared<Row>(std::vector<Label>{{"loop", loop}});
  lag_ = row->histogram(families::event_loop_lag);
  if (shared_histograms)
    shared_ =
        LoopHistograms{row->histogram(families::probe_duration), row->histogram(families::outage)};
  for (CallbackPhase phase : kCallbackPhases)
    slow_[static_cast<std::size_t>(phase)] =
        row->counter(families::slow_callbacks, "phase", std::string(to_string(phase)));
  row_ = store.publish(std::move(row));
}

void LoopSeries::timer_late(Nanos late) {
  lag_.observe(std::chrono::duration<double>(late).count());
}

void LoopSeries::slow_callback(CallbackPhase phase) {
  slow_[static_cast<std::size_t>(phase)].increment();
}

}  // namespace pgwd
