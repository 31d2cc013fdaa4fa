#pragma once

namespace pgwd::daemon {

/// The daemon's exit codes (docs/daemon.md "Exit status"): scripts depend on them.
inline constexpr int kExitOk =
    0;  ///< clean shutdown (SIGTERM/SIGINT), --help, --version, a valid --check-config
inline constexpr int kExitFailure = 1;  ///< an unexpected failure at run time
inline constexpr int kExitUsage = 2;    ///< bad flags or configuration: nothing was started

}  // namespace pgwd::daemon
