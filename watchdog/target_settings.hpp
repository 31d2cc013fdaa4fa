#pragma once

#include "health/watched_connection.hpp"
#include "pg/host_walk.hpp"
#include "pgwd/target_options.hpp"

namespace pgwd {

/// Everything a target needs, derived once from the user's options.
struct TargetSettings {
  LinkSettings link;
  LifecycleSettings lifecycle;
  Nanos scout_interval{};  ///< RecoveryScout's period; zero: no scout
  Nanos scout_spread{};    ///< how far apart the siblings come back after the scout
};

/// Validates the options and prepares the conninfo: keepalive and TCP_USER_TIMEOUT defaults,
/// `fallback_application_name=pgwatchdog`, and whether the host must be resolved (without blocking)
/// first. Throws InvalidTarget with a message that names the target and never contains a password.
TargetSettings prepare_target(const TargetOptions& options);

/// The same for a caller that holds options.conninfo parsed already (the daemon's loader parses
/// each DSN once and completes it parsed): `conninfo` must be what Conninfo::parse makes of
/// options.conninfo, whose text is then used only to redact libpq's messages.
TargetSettings prepare_target(const TargetOptions& options, Conninfo conninfo);

class Watchdog;

/// Watchdog::add_target for options whose `settings` prepare_target made already: nothing is
/// checked or parsed again (the daemon prepares each target when it loads the file, on the DSN
/// it parsed). Throws InvalidTarget only for a name taken.
void add_prepared_target(Watchdog& watchdog, TargetOptions options, TargetSettings settings);

}  // namespace pgwd
