#pragma once

/// \file
/// The daemon's Patroni clusters: one ClusterWatch per cluster of the configuration, all
/// reading through one CurlFetcher, their member targets added to and removed from the
/// daemon's Watchdog (the same add_target/remove_targets the SIGHUP reload uses), and the
/// status board told so, so that the status page, /api/v1/targets and /targets/CLUSTER/MEMBER/
/// know the members as they know any target.

#include <spdlog/logger.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/patroni/cluster_config.hpp"
#include "daemon/patroni/cluster_watch.hpp"
#include "daemon/patroni/curl_fetcher.hpp"
#include "daemon/patroni/member_targets.hpp"

namespace pgwd {
class Watchdog;
}

namespace pgwd::daemon {

class StatusBoard;

/// Loop-bound: constructed, called and destroyed on the loop's thread; registered with the loop
/// (through its fetcher and watches), so neither copied nor moved. Must be destroyed before the
/// Watchdog and the board it was given: it removes its member targets from them.
class PatroniClusters final : private MemberTargets {
 public:
  /// `members_changed` runs after member targets were added or removed (from the loop, never
  /// inside a call of this class's API): the daemon gives the status board the whole list again.
  PatroniClusters(Loop& loop, Watchdog& watchdog, StatusBoard& board, Store& store,
                  std::shared_ptr<spdlog::logger> log, std::function<void()> members_changed);
  ~PatroniClusters() override;
  PatroniClusters(const PatroniClusters&) = delete;
  PatroniClusters& operator=(const PatroniClusters&) = delete;

  /// At start-up and after a reload: a cluster whose settings are unchanged keeps running (and
  /// its members their connections); a changed one starts again; a removed one goes with its
  /// member targets.
  void set_clusters(const std::vector<PatroniCluster>& wanted);

  /// Every member target watched now, cluster by cluster.
  std::vector<TargetOptions> member_targets() const;

 private:
  void add(const TargetOptions& target) override;
  void remove(const std::vector<std::string>& names) override;
  bool answers_as_primary(const std::string& name) const override;
  MemberTargets& member_targets_view();

  Loop& loop_;
  Watchdog& watchdog_;
  StatusBoard& board_;
  Store& store_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<void()> members_changed_;
  bool notify_ = true;  // false while set_clusters runs: the caller refreshes the board itself
  CurlFetcher fetcher_;
  std::map<std::string, std::unique_ptr<ClusterWatch>, std::less<>> clusters_;  // after the fetcher
};

}  // namespace pgwd::daemon
