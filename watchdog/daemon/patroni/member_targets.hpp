#pragma once

/// \file
/// What a ClusterWatch may do to the targets: the daemon's Watchdog and status board behind it
/// (daemon/patroni_clusters.hpp), a recording fake in the unit tests.

#include <string>
#include <vector>

#include "pgwd/target_options.hpp"

namespace pgwd::daemon {

class MemberTargets {
 public:
  virtual ~MemberTargets() = default;
  /// Starts watching a member. Throws (pgwd::InvalidTarget, or std::exception) when the watchdog
  /// refuses the target: a name already taken, too long, not printable.
  virtual void add(const TargetOptions& target) = 0;
  /// Stops watching these members' targets, in one step.
  virtual void remove(const std::vector<std::string>& names) = 0;
  /// Whether the target's server answers as a primary right now (up, `in_hot_standby=off`).
  virtual bool answers_as_primary(const std::string& name) const = 0;
};

}  // namespace pgwd::daemon
