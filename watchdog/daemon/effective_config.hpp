#pragma once

#include <string>

#include "daemon/command_line.hpp"
#include "daemon/config.hpp"

namespace pgwd::daemon {

/// The config file (if any) with the command line applied: flags override, `--target` adds
/// targets that inherit the file's `defaults:`. Throws ConfigError naming the flag, file, line or
/// target; at least one target is required.
DaemonConfig effective_config(const CommandLine& cli);

/// The effective configuration as YAML, passwords shown as ***: what `--check-config` prints.
std::string describe(const DaemonConfig& config);

}  // namespace pgwd::daemon
