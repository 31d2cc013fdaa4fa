#include "fronted_targets.hpp"

#include "target.hpp"

namespace pgwd {

void FrontedTargets::add(Target& front) {
  if (!front.in_front_of().empty()) fronts_.emplace(front.in_front_of(), &front);
}

void FrontedTargets::remove(Target& front) {
  auto [it, end] = fronts_.equal_range(front.in_front_of());
  while (it != end) it = it->second == &front ? fronts_.erase(it) : std::next(it);
}

void FrontedTargets::alert(const std::string& behind) const {
  auto [it, end] = fronts_.equal_range(behind);
  for (; it != end; ++it) it->second->probe_soon();
}

}  // namespace pgwd
