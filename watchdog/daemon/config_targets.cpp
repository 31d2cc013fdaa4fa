#include "daemon/config_targets.hpp"

#include <algorithm>
#include <memory>
#include <optional>

#include "daemon/config_keys.hpp"
#include "daemon/file_reading.hpp"
#include "daemon/patroni/member_target.hpp"
#include "daemon/patroni/rest_url.hpp"
#include "daemon/secret_sources.hpp"
#include "daemon/yaml_document.hpp"
#include "pg/conninfo.hpp"
#include "pgwd/watchdog.hpp"
#include "target_settings.hpp"

namespace pgwd::daemon {
namespace {

TargetDraft read_keys(const ValueReader& reader, const YAML::Node& map,
                      const std::vector<std::string_view>& known_keys, const std::string& where,
                      TargetDraft draft) {
  for (const Entry& entry : reader.entries(map, known_keys, where)) {
    const TargetKey& key = *find_target_key(entry.key);  // entries() lets only known keys through
    key.read(reader, entry, key.range, draft);
  }
  return draft;
}

// A password_file's content, read where the key is, so that the message has its line.
std::string read_password_file(const ValueReader& reader, int line, const std::string& path,
                               const std::string& target_label) {
  try {
    return read_secret_file(path, "password_file");
  } catch (const ConfigError& e) {
    reader.fail(line, target_label + e.what());
  }
}

struct ParsedTarget {
  TargetOptions options;
  SecretSources sources;
  int name_line = 0;
  bool has_dsn = false;
  /// options.conninfo as libpq parsed it, the one time it is parsed here; nullopt when libpq
  /// cannot parse it (pgwd::validate then says why, in its usual words and order).
  std::optional<Conninfo> dsn;
  TargetDraft draft;  // for the Patroni keys and their lines
};

// A target with `patroni:`, checked: what only a cluster may have, and what it may not.
PatroniCluster read_cluster(const ValueReader& reader, const ParsedTarget& target) {
  const TargetDraft& draft = target.draft;
  const std::string who = "target '" + target.options.name + "': ";
  if (draft.patroni.empty())
    reader.fail(draft.patroni_line, who + "patroni needs at least one REST API URL");
  if (const std::string key = member_address_key(target.options.conninfo); !key.empty())
    reader.fail(draft.dsn_line != 0 ? draft.dsn_line : draft.dsn_file_line,
                who + "the dsn of a Patroni cluster may not set " + key +
                    ": each member's host and port come from the cluster");
  PatroniCluster cluster{target.options, {}, draft.discovery_interval};
  for (const std::string& url : draft.patroni) {
    try {
      cluster.rest_api.push_back(checked_rest_url(url));
    } catch (const std::invalid_argument& e) {
      reader.fail(draft.patroni_line, who + "patroni: " + e.what());
    }
  }
  return cluster;
}

ParsedTarget parse_target(const ValueReader& reader, const YAML::Node& map, std::size_t index,
                          const TargetDefaults& defaults) {
  const std::string label = "targets[" + std::to_string(index) + "]";
  TargetDraft start{defaults.options};
  start.name_line = line_of(map);
  const TargetDraft draft = read_keys(reader, map, target_key_names(), " in " + label, start);
  // A cluster's DSN is optional: its connection options may all be libpq's defaults.
  ParsedTarget target{draft.options, draft.sources, draft.name_line,
                      draft.dsn_line != 0 || draft.patroni_line != 0};
  target.draft = draft;
  const std::string& name = target.options.name;
  if (name.empty()) reader.fail(target.name_line, label + " needs a name");
  // Not validated yet: shown escaped.
  const std::string who = "target '" + escape_control_characters(name) + "': ";
  if (draft.dsn_line != 0 && draft.dsn_file_line != 0)
    reader.fail(std::max(draft.dsn_line, draft.dsn_file_line),
                who + "dsn and dsn_file are mutually exclusive; give one of them");
  if (draft.dsn_file_line != 0 && !target.sources.dsn_file.empty()) {
    try {
      target.options.conninfo = read_secret_file(target.sources.dsn_file, "dsn_file");
    } catch (const ConfigError& e) {
      reader.fail(draft.dsn_file_line, who + e.what());
    }
    target.dsn = parse_dsn(target.options.conninfo);
    // libpq's complaint quotes the text it could not parse, and all of this file is secret.
    if (!target.dsn)
      reader.fail(draft.dsn_file_line,
                  who + "the content of dsn_file '" +
                      escape_control_characters(target.sources.dsn_file) +
                      "' is not a valid libpq conninfo (not shown: it is secret)");
    target.has_dsn = true;
  } else {
    target.dsn = parse_dsn(target.options.conninfo);
  }
  // The target's own password_file, else the defaults' one where the DSN sets no password.
  std::string password;
  int password_line = draft.password_file_line;
  if (draft.password_file_line != 0) {
    if (!target.sources.password_file.empty())
      password = read_password_file(reader, password_line, target.sources.password_file, who);
  } else if (!defaults.password_file.empty() && target.dsn && !target.dsn->get("password")) {
    target.sources.password_file = defaults.password_file;
    password = defaults.password;
    password_line = target.name_line;
  }
  if (!password.empty() && target.has_dsn && target.dsn) {
    try {
      add_password(*target.dsn, password);
    } catch (const ConfigError& e) {
      reader.fail(password_line, who + e.what());
    }
    target.options.conninfo = target.dsn->text();
  }
  return target;
}

// What the targets add up to once defaults are copied into each: checked target by target, so
// that a file which would expand past the limits is refused before it takes the memory.
class Totals {
 public:
  void add(const ValueReader& reader, int line, const TargetOptions& target) {
    connections_ += target.connections;
    if (connections_ > kMaxTotalConnections)
      reader.fail(line, "target '" + target.name + "': more than " +
                            std::to_string(kMaxTotalConnections) +
                            " connections in all targets together");
    bytes_ += target.name.size() + target.conninfo.size() + target.probe_query.size();
    for (const std::string& channel : target.listen_channels) bytes_ += channel.size();
    if (bytes_ > kMaxExpandedBytes)
      reader.fail(line, "target '" + target.name + "': the targets take more than " +
                            std::to_string(kMaxExpandedBytes / (1024 * 1024)) +
                            " MiB once defaults are applied to each");
  }

 private:
  long connections_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace

TargetDefaults read_defaults(const ValueReader& reader, const Entry& section) {
  if (section.value.IsNull()) return {};  // `defaults:` with everything commented out
  if (!section.value.IsMap()) reader.wrong_type(section, "a map of target settings");
  const TargetDraft draft =
      read_keys(reader, section.value, defaults_key_names(), " in defaults", {});
  TargetDefaults defaults{draft.options, draft.sources.password_file, {}};
  if (!defaults.password_file.empty())
    defaults.password =
        read_password_file(reader, draft.password_file_line, defaults.password_file, "defaults: ");
  return defaults;
}

std::vector<TargetOptions> read_targets(const ValueReader& reader, const Entry& section,
                                        const TargetDefaults& defaults,
                                        std::map<std::string, SecretSources, std::less<>>& sources,
                                        PreparedTargets& prepared,
                                        std::vector<PatroniCluster>& clusters) {
  std::vector<TargetOptions> targets;
  if (section.value.IsNull()) return targets;
  if (!section.value.IsSequence()) reader.wrong_type(section, "a list of targets");
  std::map<std::string, int, std::less<>> first_line_of_name;
  Totals totals;
  std::size_t index = 0;  // in the file's list, clusters included
  for (const YAML::Node& item : section.value) {
    const std::string label = "targets[" + std::to_string(index) + "]";
    if (!item.IsMap())
      reader.fail(item.IsNull() ? section.line : line_of(item),
                  label + ": expected a map with name and dsn, got " + describe_node(item));
    if (index == kMaxTargets)
      reader.fail(line_of(item), "more than " + std::to_string(kMaxTargets) + " targets");
    ParsedTarget target = parse_target(reader, item, index++, defaults);
    // First, so that the name is known to be printable UTF-8 before any message quotes it. On the
    // DSN parsed above, and kept, so that the watchdog gets it as it is; one libpq cannot parse
    // is parsed again only to say why.
    std::shared_ptr<const TargetSettings> settings;
    try {
      if (target.dsn)
        settings =
            std::make_shared<const TargetSettings>(prepare_target(target.options, *target.dsn));
      else
        pgwd::validate(target.options);
    } catch (const InvalidTarget& e) {
      // Already "target 'x': ...", with any password in a conninfo error redacted.
      reader.fail(target.name_line, escape_control_characters(e.what()));
    }
    const std::string& name = target.options.name;
    if (!target.has_dsn) reader.fail(target.name_line, "target '" + name + "' needs a dsn");
    // A URI's %XX can decode to any byte; --check-config must be able to print the result.
    if (find_invalid_utf8(target.dsn->redacted()))
      reader.fail(target.name_line,
                  "target '" + name + "': a DSN value is not valid UTF-8 once %-decoded");
    if (const auto first = first_line_of_name.find(name); first != first_line_of_name.end())
      reader.fail(target.name_line, "target '" + name + "' is defined twice (first at line " +
                                        std::to_string(first->second) + ")");
    first_line_of_name.emplace(name, target.name_line);
    totals.add(reader, target.name_line, target.options);
    if (!(target.sources == SecretSources{})) sources.emplace(name, target.sources);
    if (target.draft.patroni_line != 0) {
      clusters.push_back(read_cluster(reader, target));
      continue;
    }
    if (target.draft.discovery_interval_line != 0)
      reader.fail(target.draft.discovery_interval_line,
                  "target '" + name +
                      "': discovery_interval is for a Patroni cluster only (a "
                      "target with patroni:)");
    prepared.emplace(name, std::move(settings));
    targets.push_back(std::move(target.options));
  }
  return targets;
}

}  // namespace pgwd::daemon
