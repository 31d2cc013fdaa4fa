#pragma once

/// \file
/// What changed between the members pgwatchdog watches and those Patroni now lists. Pure, so
/// every change (added, removed, renamed, moved) is a unit test.

#include <string>
#include <vector>

#include "daemon/patroni/cluster_answer.hpp"

namespace pgwd::daemon {

struct MembershipChange {
  /// Members no longer listed: their targets go. A renamed member is one removed and one added
  /// (its target's name is its name).
  std::vector<std::string> removed;
  /// Members newly listed: their targets start.
  std::vector<PatroniMember> added;
  /// Members listed under the same name at another host or port: their targets restart.
  std::vector<PatroniMember> moved;

  bool empty() const noexcept { return removed.empty() && added.empty() && moved.empty(); }
};

/// A role change alone changes nothing here: the member's target sees its server's role itself.
MembershipChange diff_members(const std::vector<PatroniMember>& watched,
                              const std::vector<PatroniMember>& listed);

}  // namespace pgwd::daemon
