#include "daemon/patroni/membership_diff.hpp"

#include <string_view>
#include <unordered_map>

namespace pgwd::daemon {
namespace {

std::unordered_map<std::string_view, const PatroniMember*> by_name(
    const std::vector<PatroniMember>& members) {
  std::unordered_map<std::string_view, const PatroniMember*> index;
  for (const PatroniMember& m : members) index.emplace(m.name, &m);
  return index;
}

}  // namespace

MembershipChange diff_members(const std::vector<PatroniMember>& watched,
                              const std::vector<PatroniMember>& listed) {
  MembershipChange change;
  const auto watched_by_name = by_name(watched);
  const auto listed_by_name = by_name(listed);
  for (const PatroniMember& old : watched)
    if (!listed_by_name.contains(old.name)) change.removed.push_back(old.name);
  for (const PatroniMember& now : listed) {
    const auto found = watched_by_name.find(now.name);
    if (found == watched_by_name.end())
      change.added.push_back(now);
    else if (found->second->host != now.host || found->second->port != now.port)
      change.moved.push_back(now);
  }
  return change;
}

}  // namespace pgwd::daemon
