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
  /// `pooled`: the target is behind a pooler, so it has server_changes series.
  TargetMetrics(MetricFamilies& families, const std::string& target,
                const SharedHistograms* shared = nullptr, bool pooled = false);
  ~TargetMetrics();

  /// Removes the series of many targets together, family by family (SeriesSweep), where
  /// destroying them one by one costs a search of each family per series: what a Watchdog does
  /// when it goes, or removes many targets. Their destructors then remove nothing; nothing may be
  /// recorded on them after this.
  ///
  /// `staying`: the caller's other targets, whose series stay. With them, on a `guarded`
  /// registry (ScrapeGuard; null: not guarded), a family is rebuilt where that is cheaper than
  /// the searches: O(n) per family instead of O(k·(n−k)); the staying targets' series are then
  /// new objects with the same values (their TargetMetrics follow), and a scrape through
  /// collect_guarded() never sees one missing. Nothing else may write to the series of
  /// `targets` and `staying` meanwhile (the loop's thread calls this).
  struct Removal {
    std::size_t in_order = 0;  ///< series found in the families' iteration order
    std::size_t visits = 0;    ///< series the families' searches passed (the cost)
    std::size_t rebuilt = 0;   ///< families rebuilt
  };
  static Removal remove_together(std::span<TargetMetrics* const> targets,
                                 std::span<TargetMetrics* const> staying = {},
                                 const prometheus::Registry* guarded = nullptr);
  TargetMetrics(const TargetMetrics&) = delete;
  TargetMetrics& operator=(const TargetMetrics&) = delete;

  /// Moves one connection between state gauges and recomputes `up`. Transient states
  /// (inspecting, down) are not shown: a scrape can never catch them.
  void connection_moved(std::optional<ConnectionState> from, std::optional<ConnectionState> to);
  void disconnected(Cause cause);
  void reconnect(bool success) { (success ? reconnect_success_ : reconnect_failure_)->Increment(); }
  void connect_failed(Cause cause);
  void wakeup() { wakeups_->Increment(); }
  void probed(ProbeResult result, std::chrono::nanoseconds duration);
  void outage(std::chrono::nanoseconds duration);
  void notification() { notifications_->Increment(); }
  void notice() { notices_->Increment(); }
  void in_hot_standby(bool standby) { in_hot_standby_->Set(standby ? 1 : 0); }
  /// Only for a pooled target.
  void server_changed(ServerChange change);

  /// States that have a `pgwatchdog_connections` series.
  static bool shown(ConnectionState state) noexcept;

 private:
  prometheus::Counter& disconnected_series(Cause cause);
  prometheus::Counter& connect_failure_series(Cause cause);

  static constexpr std::size_t kStates = static_cast<std::size_t>(ConnectionState::stopped) + 1;
  static constexpr std::size_t kCauses = static_cast<std::size_t>(Cause::wrong_role) + 1;

  /// Calls visit(family, second label name or "", its value, series slot, histogram buckets or
  /// null) for each series; the first label is always `target`.
  template <typename Visit>
  void each_series(Visit&& visit);

  MetricFamilies& families_;
  std::string target_;
  bool removed_ = false;  // by remove_together
  bool own_histograms_;
  // Pointers, not references: a rebuild (remove_together) moves the series.
  prometheus::Gauge* up_;
  prometheus::Gauge* in_hot_standby_;
  std::array<prometheus::Gauge*, kStates> connections_{};
  std::array<prometheus::Counter*, kCauses> disconnects_{};
  std::array<prometheus::Counter*, kCauses> connect_failures_{};
  prometheus::Counter* reconnect_success_;
  prometheus::Counter* reconnect_failure_;
  prometheus::Counter* wakeups_;
  prometheus::Counter* probe_ok_;
  prometheus::Counter* probe_error_;
  prometheus::Counter* probe_timeout_;
  prometheus::Histogram* probe_duration_;
  prometheus::Histogram* outage_;
  prometheus::Counter* notifications_;
  prometheus::Counter* notices_;
  /// By ServerChange; null unless pooled: a direct target's server changes show as disconnects,
  /// and 10,000 direct targets need not carry two more series each.
  std::array<prometheus::Counter*, 2> server_changes_{};
};

}  // namespace pgwd
