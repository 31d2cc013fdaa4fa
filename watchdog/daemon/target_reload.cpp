#include "daemon/target_reload.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

#include "daemon/diff_by_name.hpp"
#include "target_settings.hpp"

namespace pgwd::daemon {

ReloadPlan plan_reload(const std::vector<TargetOptions>& running,
                       const std::vector<TargetOptions>& wanted) {
  auto diff = diff_by_name(
      running, wanted, [](const TargetOptions& t) -> const std::string& { return t.name; },
      [](const TargetOptions& a, const TargetOptions& b) { return a == b; });
  return {std::move(diff.removed), std::move(diff.added), std::move(diff.changed),
          std::move(diff.unchanged)};
}

void add_target(Watchdog& watchdog, const TargetOptions& target, const PreparedTargets& prepared) {
  const auto found = prepared.find(target.name);
  if (found == prepared.end() || !found->second)
    watchdog.add_target(target);
  else
    add_prepared_target(watchdog, target, *found->second);
}

std::vector<std::function<void()>> reload_steps(const ReloadPlan& plan, Watchdog& watchdog,
                                                const PreparedTargets& prepared) {
  std::vector<std::function<void()>> steps;
  steps.reserve(1 + (plan.remove.size() + plan.restart.size()) / kRemovalsPerStep +
                plan.restart.size() + plan.add.size());
  std::vector<std::string> going = plan.remove;
  for (const TargetOptions& target : plan.restart) going.push_back(target.name);
  // remove_targets bounds the closing it does per loop pass, but not the part callers see at
  // once (7-17 µs a target): removing 10,000 in one call would be one step of tens of ms.
  for (std::size_t from = 0; from < going.size(); from += kRemovalsPerStep) {
    const auto first = going.begin() + static_cast<std::ptrdiff_t>(from);
    const auto last = going.begin() +
                      static_cast<std::ptrdiff_t>(std::min(going.size(), from + kRemovalsPerStep));
    steps.emplace_back([&watchdog, chunk = std::vector<std::string>(first, last)] {
      watchdog.remove_targets(chunk);
    });
  }
  // Each step keeps its own target's entry: the configuration that holds `prepared` may be gone
  // (replaced by the next one) before the last step runs.
  const auto add_step = [&](const TargetOptions& target) {
    PreparedTargets own;
    if (const auto found = prepared.find(target.name); found != prepared.end()) own.insert(*found);
    steps.emplace_back(
        [&watchdog, target, own = std::move(own)] { add_target(watchdog, target, own); });
  };
  for (const TargetOptions& target : plan.restart) add_step(target);
  for (const TargetOptions& target : plan.add) add_step(target);
  return steps;
}

void apply_reload(const ReloadPlan& plan, Watchdog& watchdog, spdlog::logger& log,
                  const PreparedTargets& prepared) {
  for (const auto& step : reload_steps(plan, watchdog, prepared)) step();
  log_reload(plan, log);
}

void log_reload(const ReloadPlan& plan, spdlog::logger& log) {
  log.info("config reloaded: {} added, {} removed, {} restarted, {} unchanged", plan.add.size(),
           plan.remove.size(), plan.restart.size(), plan.unchanged.size());
}

}  // namespace pgwd::daemon
