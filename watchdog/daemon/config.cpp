#include "daemon/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <new>
#include <thread>

#include "daemon/config_keys.hpp"
#include "daemon/config_targets.hpp"
#include "daemon/file_reading.hpp"
#include "daemon/yaml_document.hpp"
#include "daemon/yaml_values.hpp"

namespace pgwd::daemon {
namespace {

DaemonConfig parse_document(const ValueReader& reader, std::string_view yaml_text) {
  const YAML::Node root = load_document(reader, yaml_text, kMaxConfigBytes);
  if (root.IsNull()) return {};  // an empty file, or one with comments only
  if (!root.IsMap())
    reader.fail(line_of(root), "expected a map with the keys " + join_names(top_level_key_names()) +
                                   ", got " + describe_node(root));
  TopLevelDraft draft;
  for (const Entry& entry : reader.entries(root, top_level_key_names(), "")) {
    const TopLevelKey& key = *find_top_level_key(entry.key);  // entries() let only these through
    key.read(reader, entry, key.range, draft);
  }
  DaemonConfig config = std::move(draft.config);
  const TargetDefaults defaults =
      draft.defaults ? read_defaults(reader, *draft.defaults) : TargetDefaults{};
  config.defaults = defaults.options;
  config.default_sources.password_file = defaults.password_file;
  if (draft.targets)
    config.targets = read_targets(reader, *draft.targets, defaults, config.sources, config.prepared,
                                  config.patroni_clusters);
  config.targets_in_all_shards = config.targets.size();
  return config;
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  const auto* found = std::find(kLogLevelNames.begin(), kLogLevelNames.end(), name);
  if (found == kLogLevelNames.end()) return std::nullopt;
  return static_cast<LogLevel>(found - kLogLevelNames.begin());
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  const auto* found = std::find(kLogFormatNames.begin(), kLogFormatNames.end(), name);
  if (found == kLogFormatNames.end()) return std::nullopt;
  return static_cast<LogFormat>(found - kLogFormatNames.begin());
}

std::string_view to_string(LogLevel level) {
  return kLogLevelNames.at(static_cast<std::size_t>(level));
}

std::string_view to_string(LogFormat format) {
  return kLogFormatNames.at(static_cast<std::size_t>(format));
}

std::size_t default_connector_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp<std::size_t>(cores, 1, kMaxDefaultConnectorThreads);
}

DaemonConfig parse_config(std::string_view yaml_text, std::string_view origin,
                          const EnvironmentLookup& environment) {
  const ValueReader reader(origin, environment);
  // Whatever goes wrong in here is a configuration problem, never the end of a running daemon.
  try {
    return parse_document(reader, yaml_text);
  } catch (const ConfigError&) {
    throw;
  } catch (const YAML::Exception& e) {
    reader.fail(std::max(e.mark.line, 0) + 1, "YAML error: " + escape_control_characters(e.msg));
  } catch (const std::bad_alloc&) {
    reader.fail(1, "out of memory while loading the configuration");
  } catch (const std::exception& e) {
    reader.fail(1, "cannot load the configuration: " + escape_control_characters(e.what()));
  }
}

DaemonConfig load_config_file(const std::string& path) {
  return parse_config(read_regular_file(path, {"config file", kMaxConfigBytes, "4 MiB"}), path);
}

}  // namespace pgwd::daemon
