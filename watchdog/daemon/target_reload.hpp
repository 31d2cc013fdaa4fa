#pragma once

#include <spdlog/logger.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {

/// What a config reload (SIGHUP) changes: targets that are gone are closed, new ones started,
/// changed ones restarted; a target whose settings are all equal keeps its connections untouched.
struct ReloadPlan {
  std::vector<std::string> remove;
  std::vector<TargetOptions> add;
  std::vector<TargetOptions> restart;
  std::vector<std::string> unchanged;
};

ReloadPlan plan_reload(const std::vector<TargetOptions>& running,
                       const std::vector<TargetOptions>& wanted);

/// Adds a target with what the loader prepared of it (`prepared`, by name: its DSN is not parsed
/// again); a target without an entry there is prepared by Watchdog::add_target.
void add_target(Watchdog& watchdog, const TargetOptions& target, const PreparedTargets& prepared);

/// The steps that carry out a plan whose targets were all validated already, so none can fail,
/// each to run on the watchdog's loop, in order; the caller may run them across several loop
/// iterations. First the steps that remove every target removed or restarted
/// (Watchdog::remove_targets, kRemovalsPerStep targets a step), then one step per target added
/// or restarted, each with its entry of `prepared` (add_target above), which the steps keep. 250
/// removals are 2-4 ms of the loop (remove_targets' own part, 7-17 µs a target): with the
/// watchdog's own pass budget (5 ms) a pass stays far under 20 ms.
inline constexpr std::size_t kRemovalsPerStep = 250;
std::vector<std::function<void()>> reload_steps(const ReloadPlan& plan, Watchdog& watchdog,
                                                const PreparedTargets& prepared = {});

/// Carries out a plan at once (every step of reload_steps, then the summary log line).
void apply_reload(const ReloadPlan& plan, Watchdog& watchdog, spdlog::logger& log,
                  const PreparedTargets& prepared = {});

/// The summary line of a reload.
void log_reload(const ReloadPlan& plan, spdlog::logger& log);

}  // namespace pgwd::daemon
