#pragma once

/// \file
/// The target that watches one member of a Patroni cluster.

#include <string>
#include <string_view>

#include "daemon/patroni/cluster_answer.hpp"
#include "daemon/patroni/cluster_config.hpp"

namespace pgwd::daemon {

/// `CLUSTER/MEMBER`: the member's `target` label, unique across clusters, and readable as both.
std::string member_target_name(std::string_view cluster, std::string_view member);

/// The cluster's member settings, named member_target_name(), with the member's host and port
/// added to the cluster's connection options. Not validated: Watchdog::add_target does that
/// (a member name that makes the target name too long, say, is refused there).
TargetOptions member_target(const PatroniCluster& cluster, const PatroniMember& member);

/// The DSN keys a cluster's connection options may not set, because each member brings its own.
/// Empty if none is set, else the first one found.
std::string member_address_key(const std::string& conninfo);

}  // namespace pgwd::daemon
