#pragma once

namespace pgwd::daemon {

/// Overwrites, in place, every password found in the process's arguments (a DSN given with
/// --target) with '*', so that `ps` and /proc/PID/cmdline no longer show it. Passwords from the
/// config file never reach the command line in the first place.
void hide_passwords_in_arguments(int argc, char** argv);

}  // namespace pgwd::daemon
