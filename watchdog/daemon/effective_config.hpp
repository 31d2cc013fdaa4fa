#pragma once

#include <string>

#include "daemon/command_line.hpp"
#include "daemon/config.hpp"

namespace pgwd::daemon {

/// The config file (if any) with the command line applied: flags override, `--target` adds
/// targets that inherit the file's `defaults:`. Throws ConfigError naming the flag, file, line or
/// target; at least one target is required, and the limits of config.hpp hold for the whole.
DaemonConfig effective_config(const CommandLine& cli);

/// The configuration as YAML, passwords shown as ***: valid YAML that parse_config reads back as
/// the same listen, log settings and targets (each DSN as redacted here; `defaults:` are already
/// folded into the targets). Pure: the fuzzer checks this round trip.
std::string to_yaml(const DaemonConfig& config);

/// Comment lines (`# warning: ...`) for settings that are valid but leave faults unseen: a target
/// with heartbeat 0. Empty if there are none.
std::string warnings(const DaemonConfig& config);

/// What `--check-config` prints: to_yaml, after `listen` is tried (bound and released at once): an
/// address that cannot be bound is a ConfigError; one that is merely in use right now (usually by
/// the running daemon, when a file is checked before a SIGHUP) gets a comment line saying so, and
/// warnings() come first.
std::string describe(const DaemonConfig& config);

}  // namespace pgwd::daemon
