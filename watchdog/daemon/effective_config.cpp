#include "daemon/effective_config.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "daemon/duration.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {

DaemonConfig effective_config(const CommandLine& cli) {
  DaemonConfig config = cli.config_path ? load_config_file(*cli.config_path) : DaemonConfig{};
  if (cli.listen) {
    check_listen_address(*cli.listen);
    config.listen = *cli.listen;
  }
  if (cli.log_level) config.log_level = parse_log_level(*cli.log_level).value_or(config.log_level);
  if (cli.log_format)
    config.log_format = parse_log_format(*cli.log_format).value_or(config.log_format);
  for (const auto& [name, dsn] : cli.targets) {
    TargetOptions target = config.defaults;
    target.name = name;
    target.conninfo = dsn;
    if (std::any_of(config.targets.begin(), config.targets.end(),
                    [&](const auto& t) { return t.name == name; }))
      throw ConfigError(
          fmt::format("--target {}: a target with this name is already defined", name));
    try {
      validate(target);
    } catch (const InvalidTarget& e) {
      throw ConfigError(fmt::format("--target: {}", e.what()));
    }
    config.targets.push_back(std::move(target));
  }
  if (config.targets.empty())
    throw ConfigError("no targets: give --target NAME=DSN, or targets: in the --config file");
  return config;
}

std::string describe(const DaemonConfig& config) {
  std::string out =
      fmt::format("listen: \"{}\"\nlog_level: {}\nlog_format: {}\ntargets:\n", config.listen,
                  to_string(config.log_level), to_string(config.log_format));
  for (const TargetOptions& t : config.targets) {
    out += fmt::format("  - name: \"{}\"\n", t.name);
    out += fmt::format("    dsn: \"{}\"\n", redact_conninfo(t.conninfo));
    out += fmt::format("    connections: {}\n", t.connections);
    out += fmt::format("    probe_query: \"{}\"\n", t.probe_query);
    out += fmt::format("    probe_timeout: {}\n", format_duration(t.probe_timeout));
    out += fmt::format("    connect_timeout: {}\n", format_duration(t.connect_timeout));
    out += fmt::format("    heartbeat: {}\n", format_duration(t.heartbeat));
    out += fmt::format("    keepalives_idle: {}\n", format_duration(t.keepalives_idle));
    out += fmt::format("    keepalives_interval: {}\n", format_duration(t.keepalives_interval));
    out += fmt::format("    keepalives_count: {}\n", t.keepalives_count);
    out += fmt::format("    tcp_user_timeout: {}\n", format_duration(t.tcp_user_timeout));
    out += fmt::format("    backoff_initial: {}\n", format_duration(t.backoff_initial));
    out += fmt::format("    backoff_max: {}\n", format_duration(t.backoff_max));
    out += fmt::format("    listen_channels: [{}]\n", fmt::join(t.listen_channels, ", "));
  }
  return out;
}

}  // namespace pgwd::daemon
