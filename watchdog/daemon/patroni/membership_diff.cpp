#include "daemon/patroni/membership_diff.hpp"

#include <utility>

#include "daemon/diff_by_name.hpp"

namespace pgwd::daemon {

MembershipChange diff_members(const std::vector<PatroniMember>& watched,
                              const std::vector<PatroniMember>& listed) {
  auto diff = diff_by_name(
      watched, listed, [](const PatroniMember& m) -> const std::string& { return m.name; },
      [](const PatroniMember& a, const PatroniMember& b) {
        return a.host == b.host && a.port == b.port;  // a role change alone is no change here
      });
  return {std::move(diff.removed), std::move(diff.added), std::move(diff.changed)};
}

}  // namespace pgwd::daemon
