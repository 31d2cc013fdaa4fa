#include "daemon/config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>

#include "daemon/duration.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {
namespace {

// Messages must stay on one line whatever a value holds (a block scalar, an escaped "\n").
std::string escape_control_characters(std::string_view text) {
  std::string escaped;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      escaped += "\\n";
    } else if (c == '\t') {
      escaped += "\\t";
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr std::string_view kHex = "0123456789abcdef";
      escaped += "\\x";
      escaped += kHex[byte >> 4];
      escaped += kHex[byte & 0xf];
    } else {
      escaped += c;
    }
  }
  return escaped;
}

// A value echoed back to the user: short enough that the message still fits on a screen line.
std::string quoted_value(std::string_view value) {
  constexpr std::size_t kMaxShown = 60;
  std::string shown = escape_control_characters(value.substr(0, kMaxShown));
  if (value.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

std::string join(const std::vector<std::string_view>& names) {
  std::string joined;
  for (std::string_view name : names) {
    if (!joined.empty()) joined += ", ";
    joined += name;
  }
  return joined;
}

// yaml-cpp counts from 0. A null value's mark points at the token after it (often the next
// line), which is why value errors are reported at their key's line.
int line_of(const YAML::Node& node) {
  return std::max(node.Mark().line, 0) + 1;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quoted_value(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

class ErrorReporter {
 public:
  explicit ErrorReporter(std::string_view origin) : origin_(escape_control_characters(origin)) {}

  [[noreturn]] void fail(int line, std::string_view problem) const {
    throw ConfigError(origin_ + ":" + std::to_string(line) + ": " + std::string(problem));
  }

 private:
  std::string origin_;
};

// One `key: value` of a map, with the key already checked against the section's known keys.
struct Entry {
  std::string key;
  int line = 0;
  YAML::Node value;
};

// `where` completes "unknown key 'x'": empty at the top level, " in defaults", " in targets[2]".
std::vector<Entry> entries_of(const ErrorReporter& report, const YAML::Node& map,
                              const std::vector<std::string_view>& known_keys,
                              const std::string& where) {
  std::vector<Entry> entries;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // A copy: `it->first` lives in a proxy that dies at the end of the statement.
    const YAML::Node key = it->first;
    const int line = line_of(key);
    if (!key.IsScalar())
      report.fail(line, "a key must be a plain name" + where + ", got " + describe(key));
    if (std::find(known_keys.begin(), known_keys.end(), key.Scalar()) == known_keys.end())
      report.fail(line, "unknown key " + quoted_value(key.Scalar()) + where +
                            " (known keys: " + join(known_keys) + ")");
    // yaml-cpp keeps both copies of a repeated key; silently taking one would hide a mistake.
    for (const Entry& earlier : entries)
      if (earlier.key == key.Scalar())
        report.fail(line, "key '" + earlier.key + "' appears twice" + where + " (first at line " +
                              std::to_string(earlier.line) + ")");
    entries.push_back({key.Scalar(), line, it->second});
  }
  return entries;
}

[[noreturn]] void wrong_type(const ErrorReporter& report, const Entry& entry,
                             std::string_view expected) {
  report.fail(entry.line,
              entry.key + ": expected " + std::string(expected) + ", got " + describe(entry.value));
}

std::string read_string(const ErrorReporter& report, const Entry& entry) {
  if (!entry.value.IsScalar()) wrong_type(report, entry, "a string");
  return entry.value.Scalar();
}

// Plain decimal digits only: YAML's 0x/0o forms, signs and fractions are refused here, and a
// value in range but unusable (0 connections) is left to pgwd::validate, which says why.
int read_count(const ErrorReporter& report, const Entry& entry) {
  if (!entry.value.IsScalar()) wrong_type(report, entry, "an integer");
  const std::string& text = entry.value.Scalar();
  int count = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
      error != std::errc() || end != text.data() + text.size())
    wrong_type(report, entry, "an integer");
  return count;
}

Duration read_duration(const ErrorReporter& report, const Entry& entry) {
  if (!entry.value.IsScalar()) wrong_type(report, entry, "a duration such as 10s");
  try {
    return parse_duration(entry.value.Scalar());
  } catch (const std::invalid_argument& e) {
    report.fail(entry.line, entry.key + ": " + e.what());
  }
}

std::vector<std::string> read_string_list(const ErrorReporter& report, const Entry& entry) {
  if (entry.value.IsNull()) return {};
  if (!entry.value.IsSequence()) wrong_type(report, entry, "a list of strings");
  std::vector<std::string> strings;
  for (const YAML::Node& item : entry.value) {
    if (!item.IsScalar())
      report.fail(item.IsNull() ? entry.line : line_of(item),
                  entry.key + "[" + std::to_string(strings.size()) + "]: expected a string, got " +
                      describe(item));
    strings.push_back(item.Scalar());
  }
  return strings;
}

// The keys allowed both under `defaults:` and in a target, in the order the docs list them.
struct TargetSetting {
  std::string_view key;
  void (*apply)(const ErrorReporter&, const Entry&, TargetOptions&);
};

// clang-format off
constexpr std::array<TargetSetting, 12> kTargetSettings{{
    {"connections", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.connections = read_count(r, e); }},
    {"probe_query", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.probe_query = read_string(r, e); }},
    {"probe_timeout", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.probe_timeout = read_duration(r, e); }},
    {"connect_timeout", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.connect_timeout = read_duration(r, e); }},
    {"heartbeat", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.heartbeat = read_duration(r, e); }},
    {"keepalives_idle", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.keepalives_idle = read_duration(r, e); }},
    {"keepalives_interval", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.keepalives_interval = read_duration(r, e); }},
    {"keepalives_count", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.keepalives_count = read_count(r, e); }},
    {"tcp_user_timeout", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.tcp_user_timeout = read_duration(r, e); }},
    {"backoff_initial", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.backoff_initial = read_duration(r, e); }},
    {"backoff_max", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.backoff_max = read_duration(r, e); }},
    {"listen_channels", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.listen_channels = read_string_list(r, e); }},
}};
// clang-format on

const std::vector<std::string_view>& top_level_keys() {
  static const std::vector<std::string_view> keys{"listen", "log_level", "log_format", "defaults",
                                                  "targets"};
  return keys;
}

const std::vector<std::string_view>& defaults_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> names;
    for (const TargetSetting& setting : kTargetSettings) names.push_back(setting.key);
    return names;
  }();
  return keys;
}

const std::vector<std::string_view>& target_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> names{"name", "dsn"};
    names.insert(names.end(), defaults_keys().begin(), defaults_keys().end());
    return names;
  }();
  return keys;
}

void apply_setting(const ErrorReporter& report, const Entry& entry, TargetOptions& options) {
  for (const TargetSetting& setting : kTargetSettings)
    if (setting.key == entry.key) return setting.apply(report, entry, options);
}

TargetOptions parse_defaults(const ErrorReporter& report, const Entry& section) {
  TargetOptions defaults;
  if (section.value.IsNull()) return defaults;  // `defaults:` with everything commented out
  if (!section.value.IsMap()) wrong_type(report, section, "a map of target settings");
  for (const Entry& entry : entries_of(report, section.value, defaults_keys(), " in defaults"))
    apply_setting(report, entry, defaults);
  return defaults;
}

struct ParsedTarget {
  TargetOptions options;
  int name_line = 0;
};

ParsedTarget parse_target(const ErrorReporter& report, const YAML::Node& map, std::size_t index,
                          const TargetOptions& defaults) {
  const std::string label = "targets[" + std::to_string(index) + "]";
  ParsedTarget target{defaults, line_of(map)};
  bool has_dsn = false;
  for (const Entry& entry : entries_of(report, map, target_keys(), " in " + label)) {
    if (entry.key == "name") {
      if (entry.value.IsNull()) continue;  // reported below as a missing name
      target.options.name = read_string(report, entry);
      target.name_line = entry.line;
    } else if (entry.key == "dsn") {
      if (entry.value.IsNull()) continue;
      // Safe to read like any string: only a value that is not a scalar gets described, and then
      // as "a map" or "a list", so a password in it never reaches the message.
      target.options.conninfo = read_string(report, entry);
      has_dsn = true;
    } else {
      apply_setting(report, entry, target.options);
    }
  }
  const std::string& name = target.options.name;
  if (name.empty()) report.fail(target.name_line, label + " needs a name");
  // Checked before the name is quoted in any message, so that messages stay on one line.
  if (std::any_of(name.begin(), name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    report.fail(target.name_line, label + ": name contains a control character");
  if (!has_dsn) report.fail(target.name_line, "target '" + name + "' needs a dsn");
  return target;
}

std::vector<TargetOptions> parse_targets(const ErrorReporter& report, const Entry& section,
                                         const TargetOptions& defaults) {
  std::vector<TargetOptions> targets;
  if (section.value.IsNull()) return targets;
  if (!section.value.IsSequence()) wrong_type(report, section, "a list of targets");
  std::map<std::string, int, std::less<>> first_line_of_name;
  for (const YAML::Node& item : section.value) {
    const std::string label = "targets[" + std::to_string(targets.size()) + "]";
    if (!item.IsMap())
      report.fail(item.IsNull() ? section.line : line_of(item),
                  label + ": expected a map with name and dsn, got " + describe(item));
    ParsedTarget target = parse_target(report, item, targets.size(), defaults);
    const std::string& name = target.options.name;
    if (const auto first = first_line_of_name.find(name); first != first_line_of_name.end())
      report.fail(target.name_line, "target '" + name + "' is defined twice (first at line " +
                                        std::to_string(first->second) + ")");
    first_line_of_name.emplace(name, target.name_line);
    try {
      pgwd::validate(target.options);
    } catch (const InvalidTarget& e) {
      // Already "target 'x': ...", with any password in a conninfo error redacted.
      report.fail(target.name_line, escape_control_characters(e.what()));
    }
    targets.push_back(std::move(target.options));
  }
  return targets;
}

YAML::Node load_document(const ErrorReporter& report, std::string_view yaml_text) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    // e.what() would repeat the position in yaml-cpp's own words; the message has it already.
    report.fail(std::max(e.mark.line, 0) + 1, "YAML syntax error: " + e.msg);
  }
  // Empty documents (a stray '---' or '...') carry nothing; a second real one is a mistake.
  std::erase_if(documents, [](const YAML::Node& document) { return document.IsNull(); });
  if (documents.size() > 1)
    report.fail(line_of(documents[1]), "only one YAML document is allowed (found a second one)");
  return documents.empty() ? YAML::Node() : documents.front();
}

bool is_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != text.npos)
    return false;
  int port = 0;
  std::from_chars(text.data(), text.data() + text.size(), port);
  return port <= 65535;
}

bool is_host_name(std::string_view name) {
  constexpr std::size_t kMaxName = 253, kMaxLabel = 63;
  if (name.empty() || name.size() > kMaxName) return false;
  std::size_t label_start = 0;
  while (label_start <= name.size()) {
    const std::size_t dot = std::min(name.find('.', label_start), name.size());
    const std::string_view label = name.substr(label_start, dot - label_start);
    if (label.empty() || label.size() > kMaxLabel || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    label_start = dot + 1;
  }
  return true;
}

bool is_listen_host(std::string_view host) {
  in6_addr address{};
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return inet_pton(AF_INET6, std::string(host.substr(1, host.size() - 2)).c_str(), &address) == 1;
  // All digits and dots: an IPv4 address or a typo (10.0.0.256), never a name.
  if (!host.empty() && host.find_first_not_of("0123456789.") == host.npos)
    return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
  return is_host_name(host);
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

[[noreturn]] void cannot_read(const std::string& path, int error) {
  throw ConfigError("cannot read config file '" + escape_control_characters(path) +
                    "': " + std::strerror(error));
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (LogLevel level :
       {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error})
    if (to_string(level) == name) return level;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  for (LogFormat format : {LogFormat::text, LogFormat::json})
    if (to_string(format) == name) return format;
  return std::nullopt;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string_view to_string(LogFormat format) {
  switch (format) {
    case LogFormat::text:
      return "text";
    case LogFormat::json:
      return "json";
  }
  return "text";
}

void check_listen_address(std::string_view address) {
  const std::size_t colon = address.rfind(':');
  if (colon == address.npos || !is_listen_host(address.substr(0, colon)) ||
      !is_port(address.substr(colon + 1)))
    throw ConfigError("listen: bad address " + quoted_value(address) +
                      " (expected HOST:PORT, e.g. 127.0.0.1:10432)");
}

DaemonConfig parse_config(std::string_view yaml_text, std::string_view origin) {
  const ErrorReporter report(origin);
  const YAML::Node root = load_document(report, yaml_text);
  DaemonConfig config;
  if (root.IsNull()) return config;  // an empty file, or one with comments only
  if (!root.IsMap())
    report.fail(line_of(root), "expected a map with the keys " + join(top_level_keys()) + ", got " +
                                   describe(root));

  // `defaults:` may come after `targets:` in the file, yet every target inherits it.
  std::optional<Entry> targets_section;
  for (Entry& entry : entries_of(report, root, top_level_keys(), "")) {
    if (entry.key == "listen") {
      config.listen = read_string(report, entry);
      try {
        check_listen_address(config.listen);
      } catch (const ConfigError& e) {
        report.fail(entry.line, e.what());
      }
    } else if (entry.key == "log_level") {
      const std::string name = read_string(report, entry);
      const auto level = parse_log_level(name);
      if (!level)
        report.fail(entry.line, "log_level: unknown level " + quoted_value(name) +
                                    " (trace, debug, info, warn, error)");
      config.log_level = *level;
    } else if (entry.key == "log_format") {
      const std::string name = read_string(report, entry);
      const auto format = parse_log_format(name);
      if (!format)
        report.fail(entry.line,
                    "log_format: unknown format " + quoted_value(name) + " (text, json)");
      config.log_format = *format;
    } else if (entry.key == "defaults") {
      config.defaults = parse_defaults(report, entry);
    } else {
      targets_section = std::move(entry);
    }
  }
  if (targets_section) config.targets = parse_targets(report, *targets_section, config.defaults);
  return config;
}

DaemonConfig load_config_file(const std::string& path) {
  const std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) cannot_read(path, errno);
  std::string text;
  std::array<char, 8192> buffer;
  while (const std::size_t read = std::fread(buffer.data(), 1, buffer.size(), file.get()))
    text.append(buffer.data(), read);
  if (std::ferror(file.get())) cannot_read(path, errno);  // e.g. EISDIR: fopen accepts a directory
  return parse_config(text, path);
}

}  // namespace pgwd::daemon
