#pragma once

#include <array>
#include <optional>
#include <string>

#include "event/activity_notes.hpp"
#include "metrics/metric_families.hpp"

namespace pgwd {

/// The histograms every target of a Watchdog records into when per-target histograms are off
/// (WatchdogOptions::per_target_histograms): labelled `loop` instead of `target`.
struct SharedHistograms {
  prometheus::Histogram* probe_duration;
  prometheus::Histogram* outage;
};

/// The series of one Watchdog's loop, labelled `loop` with the watchdog's name: how late its
/// timers ran, and its slow callbacks by phase. All exist from construction (zeros); all are
/// removed on destruction.
class LoopMetrics {
 public:
  /// `shared_histograms`: also the SharedHistograms of the watchdog's targets.
  LoopMetrics(MetricFamilies& families, const std::string& loop, bool shared_histograms = false);
  ~LoopMetrics();
  LoopMetrics(const LoopMetrics&) = delete;
  LoopMetrics& operator=(const LoopMetrics&) = delete;

  void timer_late(Nanos late);
  void slow_callback(CallbackPhase phase);
  /// Null unless made with shared_histograms.
  const SharedHistograms* shared_histograms() const noexcept {
    return shared_ ? &*shared_ : nullptr;
  }

 private:
  static constexpr std::size_t kPhases = std::size(kCallbackPhases);

  MetricFamilies& families_;
  prometheus::Histogram& lag_;
  std::array<prometheus::Counter*, kPhases> slow_{};
  std::optional<SharedHistograms> shared_;
};

}  // namespace pgwd
