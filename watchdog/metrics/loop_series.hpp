#pragma once

#include <array>
#include <optional>
#include <string>

#include "event/activity_notes.hpp"
#include "metrics/store.hpp"

namespace pgwd {

/// The histograms every target of a Watchdog records into when per-target histograms are off
/// (WatchdogOptions::per_target_histograms): labelled `loop` instead of `target`.
struct LoopHistograms {
  Histogram probe_duration;
  Histogram outage;
};

/// The series of one Watchdog's loop, labelled `loop` with the watchdog's name: how late its
/// timers ran, and its slow callbacks by phase. All exist from construction (zeros); all go
/// with it.
class LoopSeries {
 public:
  /// `shared_histograms`: also the LoopHistograms of the watchdog's targets.
  LoopSeries(Store& store, const std::string& loop, bool shared_histograms = false);
  LoopSeries(const LoopSeries&) = delete;
  LoopSeries& operator=(const LoopSeries&) = delete;

  void timer_late(Nanos late);
  void slow_callback(CallbackPhase phase);
  /// Null unless made with shared_histograms.
  const LoopHistograms* shared_histograms() const noexcept { return shared_ ? &*shared_ : nullptr; }

 private:
  static constexpr std::size_t kPhases = std::size(kCallbackPhases);

  Histogram lag_;
  std::array<Counter, kPhases> slow_{};
  std::optional<LoopHistograms> shared_;
  RowHandle row_;  // last: withdrawn first
};

}  // namespace pgwd
