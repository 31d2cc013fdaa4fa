#pragma once

#include <string>
#include <unordered_map>

namespace pgwd {

class Target;

/// Which targets sit in front of which (TargetOptions::in_front_of): a pooled target names the
/// direct target behind its pooler, and an event on the latter makes the former probe at once.
/// Indexed by the target behind, so an event costs a look-up, not a pass over every target.
class FrontedTargets {
 public:
  /// Indexes `front` if it names a target behind it; `front` must stay until remove().
  void add(Target& front);
  void remove(Target& front);
  /// The target `behind` had an event: each target in front of it probes soon
  /// (Target::probe_soon, which only arms a timer).
  void alert(const std::string& behind) const;

 private:
  std::unordered_multimap<std::string, Target*> fronts_;  ///< key: the target behind
};

}  // namespace pgwd
