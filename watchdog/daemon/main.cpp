// pgwatchdog: the daemon. This file only wires: command line -> configuration -> Daemon.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "daemon/argv_scrub.hpp"
#include "daemon/command_line.hpp"
#include "daemon/config_keys.hpp"
#include "daemon/daemon.hpp"
#include "daemon/effective_config.hpp"
#include "daemon/exit_codes.hpp"
#include "daemon/web_config.hpp"

int main(int argc, char** argv) {
  using namespace pgwd::daemon;
  auto parsed = parse_command_line(argc, argv);
  if (const int* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  CommandLine& cli = std::get<CommandLine>(parsed);
  hide_passwords_in_arguments(argc, argv);  // ps must not show a --target DSN's password
  if (cli.print_config_keys) {
    std::fputs(config_key_tables().c_str(), stdout);
    return kExitOk;
  }

  try {
    DaemonConfig config = effective_config(cli);
    if (cli.check_config) {
      if (cli.web_config_path) (void)load_web_config(*cli.web_config_path);
      std::fputs(describe(config).c_str(), stdout);
      return kExitOk;
    }
    Daemon daemon(std::move(cli), std::move(config));
    const int exit_code = daemon.run();
    // Connections are closed and the log is drained. Nothing in the HTTP server needs an orderly
    // end (a scrape in flight is cut either way), so leave now: SIGTERM must stop us at once.
    // Only stdout is flushed: the log's thread may still hold stderr's lock, blocked on a full
    // pipe.
    std::fflush(stdout);
    std::_Exit(exit_code);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "pgwatchdog: error: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pgwatchdog: fatal: %s\n", e.what());
    return kExitFailure;
  }
}
