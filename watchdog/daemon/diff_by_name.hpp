#pragma once

/// \file
/// What changed between two lists of named things: the targets of a reload (target_reload.hpp)
/// and the members of a Patroni cluster between two readings (patroni/membership_diff.hpp). Both
/// ask the same: which names are gone, which are new, and which stay but differ.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pgwd::daemon {

template <class Thing>
struct NamedDiff {
  std::vector<std::string> removed;    ///< names in `before` only
  std::vector<Thing> added;            ///< in `after` only
  std::vector<Thing> changed;          ///< in both, and `same` says they differ (after's)
  std::vector<std::string> unchanged;  ///< in both, and `same` says they do not
};

/// Linear in the two sizes (each is indexed by name once), so that a reload of 10,000 targets is
/// not quadratic. `name_of(thing)` gives a name that lives as long as the lists; `same(before,
/// after)` is true when nothing of interest changed. Names are unique in each list.
template <class Thing, class NameOf, class Same>
NamedDiff<Thing> diff_by_name(const std::vector<Thing>& before, const std::vector<Thing>& after,
                              NameOf name_of, Same same) {
  const auto index = [&](const std::vector<Thing>& things) {
    std::unordered_map<std::string_view, const Thing*> by_name;
    by_name.reserve(things.size());
    for (const Thing& thing : things) by_name.emplace(name_of(thing), &thing);
    return by_name;
  };
  const auto before_by_name = index(before);
  const auto after_by_name = index(after);
  NamedDiff<Thing> diff;
  for (const Thing& old : before)
    if (!after_by_name.contains(name_of(old))) diff.removed.emplace_back(name_of(old));
  for (const Thing& now : after) {
    const auto found = before_by_name.find(name_of(now));
    if (found == before_by_name.end())
      diff.added.push_back(now);
    else if (!same(*found->second, now))
      diff.changed.push_back(now);
    else
      diff.unchanged.emplace_back(name_of(now));
  }
  return diff;
}

}  // namespace pgwd::daemon
