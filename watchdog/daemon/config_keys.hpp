#pragma once

/// \file
/// Every key of the config file, declared once: its name, where it may appear, its type, default
/// and range, one line of help, and how it is read and shown (docs/design.md §13). The loader
/// (config.cpp) reads a file through these declarations and checks the ranges they give,
/// `--check-config` (effective_config.cpp) prints through them, and `pgwatchdog
/// --print-config-keys` writes the key tables of docs/configuration.md from them, which the test
/// "docs: config keys" compares with the page. So a key cannot be parsed without being printed
/// and documented, nor documented with another range than the one checked.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/patroni/cluster_config.hpp"
#include "daemon/yaml_values.hpp"

namespace pgwd::daemon {

/// Where a key may be written.
enum class KeyPlace {
  top_level,
  defaults_and_targets,  ///< under `defaults:` (every target inherits it) and in a target
  targets_only,          ///< in a target only: it says which target this is, or names another
};

enum class ValueType { string, integer, duration, boolean, choice, string_list, map, list };

/// A target, or the `defaults:` section, as its keys are read. Its DSN and secrets are put
/// together afterwards (config.cpp), once every key of its map is known.
struct TargetDraft {
  TargetOptions options;
  SecretSources sources;
  int name_line = 0;           ///< the map's line until a name is read
  int dsn_line = 0;            ///< 0: no `dsn:`
  int dsn_file_line = 0;       ///< 0: no `dsn_file:`
  int password_file_line = 0;  ///< 0: no `password_file:` (an empty one has a line)
  /// `patroni:`: the REST endpoints of a Patroni cluster; this target is then the cluster.
  std::vector<std::string> patroni;
  int patroni_line = 0;  ///< 0: no `patroni:`
  Duration discovery_interval = kDefaultDiscoveryInterval;
  int discovery_interval_line = 0;  ///< 0: no `discovery_interval:`
};

/// The top level as its keys are read. The sections are kept for later: `defaults:` may come after
/// `targets:` in the file, yet every target inherits it.
struct TopLevelDraft {
  DaemonConfig config;
  std::optional<Entry> defaults;
  std::optional<Entry> targets;
};

/// What --check-config prints of one target.
struct ShownTarget {
  const TargetOptions& options;
  const SecretSources& sources;
  /// Set when the target is a Patroni cluster (`options` are then its members' settings).
  const PatroniCluster* cluster = nullptr;
};

template <class Draft, class Shown>
struct ConfigKey {
  std::string_view name;
  KeyPlace place;
  ValueType type;
  /// Checked by `read`, printed in the docs' range column.
  ValueRange range;
  /// The docs' default when it is not the shown value of a default configuration: "(required)",
  /// or one that depends on the machine. Empty: `show` of a default-constructed configuration.
  std::string_view default_text;
  /// One line of Markdown: the docs' "meaning" column.
  std::string_view help;
  /// Reads the entry into the draft; a bad value is a ConfigError at the entry's line.
  void (*read)(const ValueReader& reader, const Entry& entry, const ValueRange& range,
               Draft& draft);
  /// The value as --check-config prints it (YAML that reads back the same); nullopt: not
  /// printed (an unset path, a section). Null for the sections, which are printed their own way.
  std::optional<std::string> (*show)(const Shown& shown);
  /// Printed as a comment: a file's path whose content is in the DSN (shown redacted).
  bool shown_as_comment = false;
};

using TopLevelKey = ConfigKey<TopLevelDraft, DaemonConfig>;
using TargetKey = ConfigKey<TargetDraft, ShownTarget>;

/// In the order the docs list them, which is also the order of "known keys" in messages and of
/// --check-config's output.
std::span<const TopLevelKey> top_level_keys();
std::span<const TargetKey> target_keys();

/// The names of the keys allowed at the top level, under `defaults:` and in a target.
std::vector<std::string_view> top_level_key_names();
std::vector<std::string_view> defaults_key_names();
std::vector<std::string_view> target_key_names();

/// The declaration of a key by name; null for a name not declared.
const TopLevelKey* find_top_level_key(std::string_view name);
const TargetKey* find_target_key(std::string_view name);

/// The key tables of docs/configuration.md, as Markdown: the top-level keys, a blank line, the
/// target keys (`pgwatchdog --print-config-keys`).
std::string config_key_tables();

}  // namespace pgwd::daemon
