#include "daemon/command_line.hpp"

#include <CLI/CLI.hpp>

#include "daemon/config.hpp"
#include "daemon/exit_codes.hpp"
#include "pgwd/version.hpp"

namespace pgwd::daemon {

std::variant<CommandLine, int> parse_command_line(int argc, const char* const* argv) {
  CommandLine cli;
  std::vector<std::string> targets;
  CLI::App app{
      "pgwatchdog: watches idle PostgreSQL connections, reports disconnects as Prometheus metrics",
      "pgwatchdog"};
  app.set_version_flag("--version", std::string("pgwatchdog ") + std::string(kVersion));
  app.add_option("--config", cli.config_path, "YAML config file (see pgwatchdog.yaml(5))");
  app.add_option("--target", targets,
                 "NAME=DSN: a target to watch, added to the file's (repeatable)")
      ->type_name("NAME=DSN")
      ->take_all();
  app.add_option("--listen", cli.listen, "HOST:PORT for /metrics (default 127.0.0.1:10432)");
  app.add_option("--log-level", cli.log_level, "trace|debug|info|warn|error (default info)")
      ->check(
          CLI::IsMember(std::vector<std::string>(kLogLevelNames.begin(), kLogLevelNames.end())));
  app.add_option("--log-format", cli.log_format, "text|json (default text)")
      ->check(
          CLI::IsMember(std::vector<std::string>(kLogFormatNames.begin(), kLogFormatNames.end())));
  app.add_option("--web.config.file", cli.web_config_path,
                 "exporter-toolkit web config: TLS, client certificates, basic auth "
                 "(see pgwatchdog(1))");
  app.add_flag("--web.health-without-auth", cli.health_without_auth,
               "Serve /-/healthy and /-/ready without basic auth or client certificate");
  app.add_option("--shard", cli.shard,
                 "I (0-based) or auto (the -<ordinal> ending the host name, as in a StatefulSet): "
                 "watch only the targets that hash to shard I")
      ->type_name("I|auto");
  app.add_option("--total-shards", cli.total_shards,
                 "N: the number of shards (replicas) the targets are spread over")
      ->type_name("N");
  app.add_flag(
      "--check-config", cli.check_config,
      "Validate the configuration, print the effective targets (passwords redacted) and exit");
  // Hidden (no group): for the docs' key tables, which the test "docs: config keys" compares.
  app.add_flag("--print-config-keys", cli.print_config_keys,
               "Print the config file's keys as the Markdown tables of pgwatchdog.yaml(5) and exit")
      ->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the error
    return code == 0 ? kExitOk : kExitUsage;
  }
  for (const std::string& spec : targets) {
    const auto equals = spec.find('=');
    if (equals == std::string::npos || equals == 0) {
      // Never echo the value: it is a DSN and may carry a password.
      std::fprintf(stderr,
                   "pgwatchdog: error: --target expects NAME=DSN, e.g. --target primary='host=db1 "
                   "dbname=app'\n");
      return kExitUsage;
    }
    cli.targets.emplace_back(spec.substr(0, equals), spec.substr(equals + 1));
  }
  return cli;
}

}  // namespace pgwd::daemon
