#pragma once

/// \file
/// The daemon's YAML config file (docs/configuration.md). Read once at start-up and again on
/// SIGHUP; every problem is a ConfigError whose one-line message says where it is and what to write
/// instead. Each key is declared once, in config_keys.hpp; the text is checked as YAML by
/// yaml_document.hpp and each value read by yaml_values.hpp.

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config_error.hpp"
#include "daemon/env_references.hpp"
#include "daemon/patroni/cluster_config.hpp"
#include "daemon/sharding.hpp"
#include "pgwd/target_options.hpp"

namespace pgwd {
struct TargetSettings;
}

namespace pgwd::daemon {

enum class LogFormat { text, json };
enum class LogLevel { trace, debug, info, warn, error };

/// The names of the enumerators, in their order: the config file, the command line and the docs
/// take these.
inline constexpr std::array<std::string_view, 5> kLogLevelNames{"trace", "debug", "info", "warn",
                                                                "error"};
inline constexpr std::array<std::string_view, 2> kLogFormatNames{"text", "json"};

/// Exactly the names of the enumerators ("warn", not "warning"); nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view name);
std::optional<LogFormat> parse_log_format(std::string_view name);
std::string_view to_string(LogLevel level);
std::string_view to_string(LogFormat format);

constexpr std::string_view kDefaultListen = "127.0.0.1:10432";

/// Limits that keep a hostile or mistyped file from eating the machine (docs/configuration.md
/// "Limits"). A file is refused before yaml-cpp sees it when it is larger than this (10,000 targets
/// take about 2 MiB); the document, with every YAML alias counted as what it stands for, must fit
/// too.
constexpr std::size_t kMaxConfigBytes = 4 * 1024 * 1024;
/// What the targets take once `defaults:` is copied into each of them (names, DSNs, probe
/// queries, channel names).
constexpr std::size_t kMaxExpandedBytes = 16 * 1024 * 1024;
constexpr std::size_t kMaxTargets = 10'000;
constexpr long kMaxTotalConnections = 10'000;
constexpr std::size_t kMaxListenChannels = 100;  ///< per target
constexpr std::size_t kMaxProbeQueryBytes = 4096;

/// Where a target's secrets came from: paths only, never what the files hold. --check-config
/// prints them; the secrets themselves are already in the target's conninfo.
struct SecretSources {
  std::string password_file;  ///< "" when the password (if any) is in the dsn
  std::string dsn_file;       ///< "" when the dsn is in the config file or on the command line
  bool operator==(const SecretSources&) const = default;
};

/// The daemon's default connector_threads: one per core (std::thread::hardware_concurrency(),
/// 1 if unknown), at most this many. SCRAM is ~2.5 ms of CPU per attempt; a thread per core lets
/// a reconnect storm use every core, and max_concurrent_connects (16) keeps more threads than 4
/// from having anything to do.
constexpr std::size_t kMaxDefaultConnectorThreads = 4;
std::size_t default_connector_threads();

/// By target name: what the library's prepare_target made of each target when the loader
/// validated it, on the DSN the loader parsed. The daemon adds its targets with these
/// (add_prepared_target), so that libpq parses a DSN once on its way in (docs/design.md §3).
/// Shared: the configuration is copied, and a reload's steps hold the targets they add.
using PreparedTargets = std::map<std::string, std::shared_ptr<const TargetSettings>, std::less<>>;

struct DaemonConfig {
  std::string listen{kDefaultListen};
  LogLevel log_level = LogLevel::info;
  LogFormat log_format = LogFormat::text;
  /// WatchdogOptions::per_target_histograms; read at start-up only.
  bool per_target_histograms = true;
  /// WatchdogOptions::connector_threads; read at start-up only. By default one per core, at
  /// most kMaxDefaultConnectorThreads (default_connector_threads()).
  std::size_t connector_threads = default_connector_threads();
  /// The `defaults:` section applied over TargetOptions' own defaults; name and conninfo empty.
  /// Kept so that targets added on the command line inherit it too.
  TargetOptions defaults;
  /// In file order, each one `defaults` with the target's own keys applied over it. A list
  /// (listen_channels) set on a target replaces the default list rather than extending it.
  std::vector<TargetOptions> targets;
  /// The targets with `patroni:`, in file order: each a cluster whose members are read from its
  /// REST API and watched as targets of their own (patroni/cluster_watch.hpp).
  std::vector<PatroniCluster> patroni_clusters;
  /// `defaults: password_file:`, which --target targets inherit as the file's targets do.
  SecretSources default_sources;
  /// By target name; only targets with a password_file or dsn_file have an entry.
  std::map<std::string, SecretSources, std::less<>> sources;
  /// An entry for each target of `targets`.
  PreparedTargets prepared;
  /// Set by --shard/--total-shards: `targets` then holds only this shard's targets (every target
  /// of the file was validated first), out of `targets_in_all_shards`.
  std::optional<Shard> shard;
  std::size_t targets_in_all_shards = 0;
};

/// Parses YAML text. `origin` (usually the file path) starts every error message:
/// "<origin>:<line>: ...", with the 1-based line of the key or value at fault. Targets are
/// referred to as `targets[i]` (0-based, as yq and JSON paths count) until their name is known.
/// Throws ConfigError. Every target passes pgwd::validate and names are unique. No targets at
/// all (an empty file, `targets: []`) is valid here: whether that is an error is the caller's call.
/// `${NAME}` references in values are expanded through `environment` (env_references.hpp);
/// `password_file:` and `dsn_file:` are read here (secret_sources.hpp), so a missing or empty file
/// is a ConfigError at the key's line.
DaemonConfig parse_config(std::string_view yaml_text, std::string_view origin,
                          const EnvironmentLookup& environment = process_environment);

/// Reads and parses a file; its path is the origin of error messages. A missing or unreadable
/// file: ConfigError "cannot read config file '<path>': <strerror>". Only a regular file (or a
/// link to one) of at most kMaxConfigBytes is read: a FIFO, a device or a directory is refused
/// without reading (and without blocking: opening a FIFO does not wait for a writer), so that
/// reading on SIGHUP never stalls the loop. Every exception on the way (yaml-cpp's, bad_alloc)
/// arrives as a ConfigError.
DaemonConfig load_config_file(const std::string& path);

}  // namespace pgwd::daemon
