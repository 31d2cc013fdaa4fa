#include "daemon/target_reload.hpp"

#include <algorithm>

namespace pgwd::daemon {
namespace {

const TargetOptions* find(const std::vector<TargetOptions>& targets, const std::string& name) {
  const auto it =
      std::find_if(targets.begin(), targets.end(), [&](const auto& t) { return t.name == name; });
  return it == targets.end() ? nullptr : &*it;
}

}  // namespace

ReloadPlan plan_reload(const std::vector<TargetOptions>& running,
                       const std::vector<TargetOptions>& wanted) {
  ReloadPlan plan;
  for (const TargetOptions& old : running)
    if (!find(wanted, old.name)) plan.remove.push_back(old.name);
  for (const TargetOptions& target : wanted) {
    const TargetOptions* old = find(running, target.name);
    if (!old)
      plan.add.push_back(target);
    else if (!(*old == target))
      plan.restart.push_back(target);
    else
      plan.unchanged.push_back(target.name);
  }
  return plan;
}

void apply_reload(const ReloadPlan& plan, Watchdog& watchdog, spdlog::logger& log) {
  for (const std::string& name : plan.remove) watchdog.remove_target(name);
  for (const TargetOptions& target : plan.restart) {
    watchdog.remove_target(target.name);
    watchdog.add_target(target);
  }
  for (const TargetOptions& target : plan.add) watchdog.add_target(target);
  log.info("config reloaded: {} added, {} removed, {} restarted, {} unchanged", plan.add.size(),
           plan.remove.size(), plan.restart.size(), plan.unchanged.size());
}

}  // namespace pgwd::daemon
