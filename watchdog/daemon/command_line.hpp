#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace pgwd::daemon {

/// What the user asked for on the command line (docs/daemon.md). Flags override the config file;
/// `--target` adds to the file's targets.
struct CommandLine {
  std::optional<std::string> config_path;
  std::vector<std::pair<std::string, std::string>> targets;  ///< NAME, DSN
  std::optional<std::string> listen;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
  bool check_config = false;
  bool print_config_keys = false;  ///< hidden: the docs' key tables (config_keys.hpp)
  std::optional<std::string> web_config_path;  ///< --web.config.file (TLS, basic auth)
  bool health_without_auth = false;            ///< --web.health-without-auth
  /// As given: checked by parse_shard_flags (sharding.hpp), which needs the host name for "auto".
  std::optional<std::string> shard;
  std::optional<std::string> total_shards;
};

/// Parsed flags, or the exit code to leave with at once (--help, --version: 0; a usage error: 2,
/// after printing it).
std::variant<CommandLine, int> parse_command_line(int argc, const char* const* argv);

}  // namespace pgwd::daemon
