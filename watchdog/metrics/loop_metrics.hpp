#pragma once

#include <array>
#include <string>

#include "event/activity_notes.hpp"
#include "metrics/metric_families.hpp"

namespace pgwd {

/// The series of one Watchdog's loop, labelled `loop` with the watchdog's name: how late its
/// timers ran, and its slow callbacks by phase. All exist from construction (zeros); all are
/// removed on destruction.
class LoopMetrics {
 public:
  LoopMetrics(MetricFamilies& families, const std::string& loop);
  ~LoopMetrics();
  LoopMetrics(const LoopMetrics&) = delete;
  LoopMetrics& operator=(const LoopMetrics&) = delete;

  void timer_late(Nanos late);
  void slow_callback(CallbackPhase phase);

 private:
  static constexpr std::size_t kPhases = std::size(kCallbackPhases);

  MetricFamilies& families_;
  prometheus::Histogram& lag_;
  std::array<prometheus::Counter*, kPhases> slow_{};
};

}  // namespace pgwd
