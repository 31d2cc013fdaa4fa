#pragma once

/// \file
/// One Patroni cluster, watched: its members read from GET /cluster every discovery_interval,
/// each member watched as a target of its own (member_target.hpp), the targets following the
/// membership (added, removed, renamed, moved), the leader and the members answering as primary
/// exported (cluster_series.hpp), and two primaries at once logged as an error.

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "daemon/patroni/answer_source.hpp"
#include "daemon/patroni/cluster_answer.hpp"
#include "daemon/patroni/cluster_config.hpp"
#include "daemon/patroni/cluster_series.hpp"
#include "daemon/patroni/member_targets.hpp"
#include "pgwd/loop.hpp"

namespace pgwd::daemon {

/// Loop-bound: constructed, driven and destroyed on the loop's thread; its timers point at it,
/// so it is neither copied nor moved.
///
/// A reading tries the REST endpoints in order, each within min(discovery_interval, 5 s), until
/// one gives a valid answer. A reading that fails on every endpoint (unreachable, a status other
/// than 200, an answer that is not a cluster) changes no target: the members keep being watched
/// as they were, `pgwatchdog_patroni_discovery_up` is 0, each failure is counted by reason, and
/// the log says why (an error when the reason changes, then at debug level, so an endpoint
/// that stays down does not flood it). A member the watchdog refuses is skipped and counted
/// (`member_refused`); the others are watched.
///
/// What it calls back into: MemberTargets (add, remove, answers_as_primary) from its own timer
/// and fetch callbacks only, never from its constructor. Those calls must not destroy the
/// ClusterWatch. Destroying it stops its timers, cancels a reading in flight and removes every
/// member target it added.
class ClusterWatch {
 public:
  /// How often the members' roles are compared: the split-brain alarm is at most this late
  /// after the targets saw the roles (which a heartbeat refreshes).
  static constexpr std::chrono::milliseconds kRoleCheckInterval{1000};
  /// The longest a GET may take, whatever the discovery interval.
  static constexpr std::chrono::milliseconds kMaxRequestTime{5000};

  /// Starts at once: the first reading is made from the loop, right after this returns.
  ClusterWatch(PatroniCluster cluster, Loop& loop, AnswerSource& source, MemberTargets& targets,
               Store& store, std::shared_ptr<spdlog::logger> log);
  ~ClusterWatch();
  ClusterWatch(const ClusterWatch&) = delete;
  ClusterWatch& operator=(const ClusterWatch&) = delete;
  ClusterWatch(ClusterWatch&&) = delete;
  ClusterWatch& operator=(ClusterWatch&&) = delete;

  const PatroniCluster& cluster() const noexcept { return cluster_; }
  /// The targets of the members watched now, in Patroni's order.
  std::vector<TargetOptions> member_targets() const;

 private:
  void start_reading();
  void ask(std::size_t endpoint);
  void answered(std::size_t endpoint, FetchResult result);
  /// One endpoint failed: the next one is asked, or the reading has failed.
  void failed(std::size_t endpoint, DiscoveryError reason, const std::string& why);
  void reading_done();
  void apply(const ClusterAnswer& answer);
  void check_roles();

  PatroniCluster cluster_;
  Loop& loop_;
  AnswerSource& source_;
  MemberTargets& targets_;
  std::shared_ptr<spdlog::logger> log_;
  ClusterSeries series_;
  std::vector<PatroniMember> watched_;  // members whose target was added
  std::string leader_;
  bool failing_ = false;                // the last reading failed on every endpoint
  std::vector<std::string> failures_;   // of the reading in progress
  std::vector<std::string> told_;       // failures of the last reading: logged already
  std::vector<std::string> skipped_;    // members the last answer left out, and why
  std::vector<std::string> refused_;    // members refused once: logged once
  std::vector<std::string> primaries_;  // member targets answering as primary, last check
  MonotonicTime reading_started_{};
  std::unique_ptr<PendingFetch> fetch_;
  TimerPtr next_reading_;
  TimerPtr role_check_;
};

}  // namespace pgwd::daemon
