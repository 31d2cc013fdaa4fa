#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>

#include "metrics/loop_metrics.hpp"
#include "metrics/metric_families.hpp"
#include "pgwd/connection_state.hpp"
#include "pgwd/events.hpp"

namespace pgwd {

/// The series of one target. All exist from construction (zeros, not absent series), so that
/// dashboards and `rate()` see a target before its first event; all are removed on destruction
/// (or before, by remove_together).
class TargetMetrics {
 public:
  /// With `shared` (per-target histograms off), probe durations and outages are recorded in
  /// its histograms, which this target does not own.
  TargetMetrics(MetricFamilies& families, const std::string& target,
                const SharedHistograms* shared = nullptr);
  ~TargetMetrics();

  /// Removes the series of many targets in O(their series + their families' size), where destroying
  /// them one by one costs O(series × families' size) (see SeriesSweep): what a Watchdog does when
  /// it goes, or drops many targets. Their destructors then remove nothing; nothing may be recorded
  /// on them after this. Returns how many series were found in the families' iteration order (all
  /// of them, unless another Watchdog added series to the same families meanwhile).
  static std::size_t remove_together(std::span<TargetMetrics* const> targets);
  TargetMetrics(const TargetMetrics&) = delete;
  TargetMetrics& operator=(const TargetMetrics&) = delete;

  /// Moves one connection between state gauges and recomputes `up`. Transient states
  /// (inspecting, down) are not shown: a scrape can never catch them.
  void connection_moved(std::optional<ConnectionState> from, std::optional<ConnectionState> to);
  void disconnected(Cause cause);
  void reconnect(bool success) { (success ? reconnect_success_ : reconnect_failure_).Increment(); }
  void connect_failed(Cause cause);
  void wakeup() { wakeups_.Increment(); }
  void probed(ProbeResult result, std::chrono::nanoseconds duration);
  void outage(std::chrono::nanoseconds duration);
  void notification() { notifications_.Increment(); }
  void notice() { notices_.Increment(); }
  void in_hot_standby(bool standby) { in_hot_standby_.Set(standby ? 1 : 0); }

  /// States that have a `pgwatchdog_connections` series.
  static bool shown(ConnectionState state) noexcept;

 private:
  prometheus::Counter& disconnected_series(Cause cause);
  prometheus::Counter& connect_failure_series(Cause cause);

  static constexpr std::size_t kStates = static_cast<std::size_t>(ConnectionState::stopped) + 1;
  static constexpr std::size_t kCauses = static_cast<std::size_t>(Cause::wrong_role) + 1;

  /// Calls visit(family, second label name or "", its value, series) for each series; the
  /// first label is always `target`.
  template <typename Visit>
  void each_series(Visit&& visit);

  MetricFamilies& families_;
  std::string target_;
  bool removed_ = false;  // by remove_together
  bool own_histograms_;
  prometheus::Gauge& up_;
  prometheus::Gauge& in_hot_standby_;
  std::array<prometheus::Gauge*, kStates> connections_{};
  std::array<prometheus::Counter*, kCauses> disconnects_{};
  std::array<prometheus::Counter*, kCauses> connect_failures_{};
  prometheus::Counter& reconnect_success_;
  prometheus::Counter& reconnect_failure_;
  prometheus::Counter& wakeups_;
  prometheus::Counter& probe_ok_;
  prometheus::Counter& probe_error_;
  prometheus::Counter& probe_timeout_;
  prometheus::Histogram& probe_duration_;
  prometheus::Histogram& outage_;
  prometheus::Counter& notifications_;
  prometheus::Counter& notices_;
};

}  // namespace pgwd
