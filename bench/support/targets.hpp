#pragma once

/// \file
/// N connections as targets of at most 1000 connections each (a target's limit): "name0",
/// "name1", ... all with the same conninfo.

#include <algorithm>
#include <functional>
#include <string>

#include "pgwd/watchdog.hpp"

namespace pgwd::bench {

inline constexpr int kConnectionsPerTarget = 1000;

/// `watchdog` is a Watchdog (on its loop thread) or a WatchdogThread (from any thread).
template <typename AnyWatchdog>
void add_connections(AnyWatchdog& watchdog, const std::string& name, const std::string& conninfo,
                     int connections, const std::function<void(TargetOptions&)>& customize = {}) {
  for (int first = 0, k = 0; first < connections; first += kConnectionsPerTarget, ++k) {
    TargetOptions target;
    target.name = name + std::to_string(k);
    target.conninfo = conninfo;
    target.connections = std::min(kConnectionsPerTarget, connections - first);
    if (customize) customize(target);
    watchdog.add_target(target);
  }
}

}  // namespace pgwd::bench
