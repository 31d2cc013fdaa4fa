#pragma once

#include <spdlog/logger.h>

#include <string>
#include <vector>

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

/// Carries out a plan whose targets were all validated already, so it cannot fail half-way.
void apply_reload(const ReloadPlan& plan, Watchdog& watchdog, spdlog::logger& log);

}  // namespace pgwd::daemon
