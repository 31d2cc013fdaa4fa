#pragma once

/// \file
/// A Patroni cluster's own series (families in metrics/families.hpp, described in
/// docs/metrics.md), in rows labelled `cluster`:
///   pgwatchdog_patroni_discovery_up{cluster}               1 after a valid answer, else 0
///   pgwatchdog_patroni_discovery_errors_total{cluster,reason}
///   pgwatchdog_patroni_members{cluster}                    members watched
///   pgwatchdog_patroni_primaries{cluster}                  members answering as primary now
///   pgwatchdog_patroni_leader{cluster,member}              1, for Patroni's leader only
/// The member targets' own series are the usual targets' ones.

#include <string>
#include <string_view>

#include "metrics/store.hpp"

namespace pgwd::daemon {

/// Why a reading of /cluster failed: the `reason` label.
enum class DiscoveryError { unreachable, http_status, malformed, member_refused };
std::string_view to_string(DiscoveryError reason);

/// Loop-bound, like its owner (ClusterWatch). Withdraws its rows when destroyed.
class ClusterSeries {
 public:
  ClusterSeries(Store& store, const std::string& cluster);
  ClusterSeries(const ClusterSeries&) = delete;
  ClusterSeries& operator=(const ClusterSeries&) = delete;

  void discovered(bool valid) { discovery_up_.set(valid ? 1 : 0); }
  void error(DiscoveryError reason);
  void members(std::size_t count) { members_.set(static_cast<double>(count)); }
  void primaries(std::size_t count) { primaries_.set(static_cast<double>(count)); }
  /// The leader's row is replaced when the leader changes; empty: no leader, no row.
  void leader(const std::string& member);

 private:
  Store& store_;
  std::string cluster_;
  Gauge discovery_up_;
  Counter errors_[4];
  Gauge members_;
  Gauge primaries_;
  RowHandle row_;
  std::string leader_;
  RowHandle leader_row_;
};

}  // namespace pgwd::daemon
