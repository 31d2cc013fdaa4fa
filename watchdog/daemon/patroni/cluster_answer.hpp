#pragma once

/// \file
/// Patroni's answer to `GET /cluster`, read: the members pgwatchdog can watch, and the leader.
/// Pure (no I/O), so every shape of answer is a unit test.

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgwd::daemon {

/// One member of the cluster as Patroni lists it.
struct PatroniMember {
  std::string name;
  std::string host;
  int port = 0;
  /// Patroni's word: "leader", "replica", "sync_standby", "standby_leader", ...
  std::string role;
  bool operator==(const PatroniMember&) const = default;
};

struct ClusterAnswer {
  /// The members that can be watched, in Patroni's order, names unique.
  std::vector<PatroniMember> members;
  /// The member whose role is "leader" (or "master"/"primary", older Patroni's words); empty if
  /// none is (a failover in progress). "standby_leader" is not it: it leads a standby cluster
  /// and is itself in recovery.
  std::string leader;
  /// One line per member left out (no name, no host or port, a duplicate name), saying which
  /// and why: the caller logs them.
  std::vector<std::string> skipped;
};

/// An answer that is not a cluster at all: not JSON, not an object, no `members` list. Its
/// message says what was wrong, never quoting more than a few bytes of the answer.
class MalformedAnswer : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// At most this many members are read; the others are skipped (a hostile or broken endpoint
/// must not make the daemon open thousands of connections).
inline constexpr std::size_t kMaxMembers = 100;

/// Reads the body of `GET /cluster`. Throws MalformedAnswer.
ClusterAnswer parse_cluster_answer(std::string_view body);

}  // namespace pgwd::daemon
