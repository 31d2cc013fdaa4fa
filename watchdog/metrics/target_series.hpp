#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "metrics/loop_series.hpp"
#include "metrics/store.hpp"
#include "pgwd/connection_state.hpp"
#include "pgwd/events.hpp"

namespace pgwd {

/// The series of one target, in a row of its own. All exist from construction (zeros, not
/// absent series), so that dashboards and `rate()` see a target before its first event; all go
/// when it is destroyed: O(1), however many targets the store holds. Loop-bound: one thread
/// writes it (scrapes read it from any).
class TargetSeries {
 public:
  /// With `shared` (per-target histograms off), probe durations and outages are recorded in
  /// its histograms, which this target does not own.
  /// `pooled`: the target is behind a pooler, so it has server_changes series.
  TargetSeries(Store& store, const std::string& target, const LoopHistograms* shared = nullptr,
               bool pooled = false);
  TargetSeries(const TargetSeries&) = delete;
  TargetSeries& operator=(const TargetSeries&) = delete;

  /// Moves one connection between state gauges and recomputes `up`. Transient states
  /// (inspecting, down) are not shown: a scrape can never catch them.
  void connection_moved(std::optional<ConnectionState> from, std::optional<ConnectionState> to);
  void disconnected(Cause cause);
  void reconnect(bool success) { (success ? reconnect_success_ : reconnect_failure_).increment(); }
  void connect_failed(Cause cause);
  void hedged() { hedges_.increment(); }
  void wakeup() { wakeups_.increment(); }
  void probed(ProbeResult result, std::chrono::nanoseconds duration);
  void outage(std::chrono::nanoseconds duration);
  void notification() { notifications_.increment(); }
  void notice() { notices_.increment(); }
  void in_hot_standby(bool standby) { in_hot_standby_.set(standby ? 1 : 0); }
  /// Only for a pooled target.
  void server_changed(ServerChange change);

  /// States that have a `pgwatchdog_connections` series.
  static bool shown(ConnectionState state) noexcept;

 private:
  static constexpr std::size_t kStates = static_cast<std::size_t>(ConnectionState::stopped) + 1;
  static constexpr std::size_t kCauses = static_cast<std::size_t>(Cause::wrong_role) + 1;

  /// A cause's series, made (in a row of its own) the first time a cause outside the usual ones
  /// is seen.
  Counter& by_cause(std::array<Counter, kCauses>& series, const Family& family, Cause cause);

  Store& store_;
  std::string target_;
  Gauge up_;
  Gauge in_hot_standby_;
  std::array<Gauge, kStates> connections_{};
  std::array<Counter, kCauses> disconnects_{};
  std::array<Counter, kCauses> connect_failures_{};
  Counter reconnect_success_;
  Counter reconnect_failure_;
  Counter hedges_;
  Counter wakeups_;
  Counter probe_ok_;
  Counter probe_error_;
  Counter probe_timeout_;
  Histogram probe_duration_;
  Histogram outage_;
  Counter notifications_;
  Counter notices_;
  /// By ServerChange; empty unless pooled: a direct target's server changes show as
  /// disconnects, and 10,000 direct targets need not carry two more series each.
  std::array<Counter, 2> server_changes_{};
  RowHandle row_;
  std::vector<RowHandle> late_rows_;  // the causes' series made later
};

}  // namespace pgwd
