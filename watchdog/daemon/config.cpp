#include "daemon/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <thread>

#include "daemon/duration.hpp"
#include "daemon/file_reading.hpp"
#include "daemon/secret_sources.hpp"
#include "pgwd/watchdog.hpp"
#include "text/utf8.hpp"

namespace pgwd::daemon {
namespace {

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

// Reports problems at their place, and expands ${NAME} references in values (every value passes
// through it, so it also knows the environment).
class ErrorReporter {
 public:
  ErrorReporter(std::string_view origin, const EnvironmentLookup& environment)
      : origin_(escape_control_characters(origin)), environment_(environment) {}

  [[noreturn]] void fail(int line, std::string_view problem) const {
    throw ConfigError(origin_ + ":" + std::to_string(line) + ": " + std::string(problem));
  }

  /// A value with its ${NAME} references expanded; `label` (the key) starts the message.
  std::string expand(int line, std::string_view label, std::string_view value) const {
    try {
      return expand_env_references(value, environment_);
    } catch (const std::invalid_argument& e) {
      fail(line, std::string(label) + ": " + e.what());
    }
  }

 private:
  std::string origin_;
  const EnvironmentLookup& environment_;
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

// A NUL can only come from an escape ("\0"), and libpq and the server would cut the string there.
std::string read_string(const ErrorReporter& report, const Entry& entry) {
  if (!entry.value.IsScalar()) wrong_type(report, entry, "a string");
  if (entry.value.Scalar().find('\0') != std::string::npos)
    report.fail(entry.line, entry.key + ": contains a NUL character");
  return report.expand(entry.line, entry.key, entry.value.Scalar());
}

std::string read_bounded_string(const ErrorReporter& report, const Entry& entry,
                                std::size_t max_bytes) {
  std::string text = read_string(report, entry);
  if (text.size() > max_bytes)
    report.fail(entry.line, entry.key + ": longer than " + std::to_string(max_bytes) + " bytes (" +
                                std::to_string(text.size()) + ")");
  return text;
}

[[noreturn]] void out_of_range(const ErrorReporter& report, const Entry& entry,
                               const std::string& low, const std::string& high) {
  report.fail(entry.line, entry.key + ": " + describe(entry.value) + " is out of range (" + low +
                              " to " + high + ")");
}

// Plain decimal digits only: YAML's 0x/0o forms, signs and fractions are refused, and so is a
// number outside [min, max], with the range in the message.
int read_count(const ErrorReporter& report, const Entry& entry, int min, int max) {
  if (!entry.value.IsScalar()) wrong_type(report, entry, "an integer");
  const std::string text = report.expand(entry.line, entry.key, entry.value.Scalar());
  const bool negative = text.size() > 1 && text.front() == '-';
  const std::string_view digits = std::string_view(text).substr(negative ? 1 : 0);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    wrong_type(report, entry, "an integer");
  int count = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
  if (negative || error != std::errc() || end != digits.data() + digits.size() || count < min ||
      count > max)
    out_of_range(report, entry, std::to_string(min), std::to_string(max));
  return count;
}

// Every duration has a range that keeps it far from overflowing wherever it is used (as
// nanoseconds on a steady clock, multiplied by a host count, or handed to libpq as an int).
Duration read_duration(const ErrorReporter& report, const Entry& entry, Duration min,
                       Duration max) {
  if (!entry.value.IsScalar()) wrong_type(report, entry, "a duration such as 10s");
  Duration duration{};
  try {
    duration = parse_duration(report.expand(entry.line, entry.key, entry.value.Scalar()));
  } catch (const std::out_of_range&) {
    out_of_range(report, entry, format_duration(min), format_duration(max));
  } catch (const std::invalid_argument& e) {
    report.fail(entry.line, entry.key + ": " + e.what());
  }
  if (duration < min || duration > max)
    out_of_range(report, entry, format_duration(min), format_duration(max));
  return duration;
}

std::vector<std::string> read_string_list(const ErrorReporter& report, const Entry& entry,
                                          std::size_t max_items) {
  if (entry.value.IsNull()) return {};
  if (!entry.value.IsSequence()) wrong_type(report, entry, "a list of strings");
  if (entry.value.size() > max_items)
    report.fail(entry.line, entry.key + ": more than " + std::to_string(max_items) + " entries (" +
                                std::to_string(entry.value.size()) + ")");
  std::vector<std::string> strings;
  for (const YAML::Node& item : entry.value) {
    const std::string label = entry.key + "[" + std::to_string(strings.size()) + "]";
    if (!item.IsScalar())
      report.fail(item.IsNull() ? entry.line : line_of(item),
                  label + ": expected a string, got " + describe(item));
    if (item.Scalar().find('\0') != std::string::npos)
      report.fail(line_of(item), label + ": contains a NUL character");
    strings.push_back(report.expand(line_of(item), label, item.Scalar()));
  }
  return strings;
}

Pooler read_pooler(const ErrorReporter& report, const Entry& entry) {
  const std::string name = read_string(report, entry);
  const auto pooler = parse_pooler(name);
  if (!pooler)
    report.fail(entry.line,
                entry.key + ": unknown pooler " + quoted_value(name) + " (none, pgbouncer)");
  return *pooler;
}

bool read_bool(const ErrorReporter& report, const Entry& entry) {
  const std::string value = read_string(report, entry);
  if (value != "true" && value != "false")
    report.fail(entry.line, entry.key + ": expected true or false, got " + quoted_value(value));
  return value == "true";
}

// The keys allowed both under `defaults:` and in a target, in the order the docs list them.
struct TargetSetting {
  std::string_view key;
  void (*apply)(const ErrorReporter&, const Entry&, TargetOptions&);
};

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// The ranges are the library's (pgwd::validate refuses the same values): checked here as well so
// that the message names the key and its line. Keepalive limits are Linux's (TCP_KEEPIDLE and
// TCP_KEEPINTVL at most 32767 s, TCP_KEEPCNT at most 127): beyond them every connect would fail.
// clang-format off
constexpr std::array<TargetSetting, 16> kTargetSettings{{
    {"connections", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.connections = read_count(r, e, 1, 1000); }},
    {"probe_query", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.probe_query = read_bounded_string(r, e, kMaxProbeQueryBytes); }},
    {"probe_timeout", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.probe_timeout = read_duration(r, e, milliseconds(1), hours(1)); }},
    {"connect_timeout", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.connect_timeout = read_duration(r, e, milliseconds(1), minutes(10)); }},
    {"heartbeat", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.heartbeat = read_duration(r, e, Duration::zero(), hours(24)); }},
    {"heartbeat_query", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.heartbeat_query = read_bounded_string(r, e, kMaxProbeQueryBytes); }},
    {"pooler", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.pooler = read_pooler(r, e); }},
    {"proxied", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.proxied = read_bool(r, e); }},
    {"keepalives_idle", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.keepalives_idle = read_duration(r, e, seconds(1), seconds(32767)); }},
    {"keepalives_interval", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.keepalives_interval = read_duration(r, e, seconds(1), seconds(32767)); }},
    {"keepalives_count", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.keepalives_count = read_count(r, e, 1, 127); }},
    {"tcp_user_timeout", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.tcp_user_timeout = read_duration(r, e, Duration::zero(), hours(24)); }},
    {"backoff_initial", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.backoff_initial = read_duration(r, e, milliseconds(1), hours(1)); }},
    {"backoff_max", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.backoff_max = read_duration(r, e, milliseconds(1), hours(24)); }},
    {"scout_interval", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.scout_interval = read_duration(r, e, Duration::zero(), hours(1)); }},
    {"listen_channels", [](const ErrorReporter& r, const Entry& e, TargetOptions& o) { o.listen_channels = read_string_list(r, e, kMaxListenChannels); }},
}};
// clang-format on

const std::vector<std::string_view>& top_level_keys() {
  static const std::vector<std::string_view> keys{
      "listen",  "log_level", "log_format", "per_target_histograms", "connector_threads",
      "defaults", "targets"};
  return keys;
}

const std::vector<std::string_view>& defaults_keys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> names;
    for (const TargetSetting& setting : kTargetSettings) names.push_back(setting.key);
    names.push_back("password_file");
    return names;
  }();
  return keys;
}

const std::vector<std::string_view>& target_keys() {
  static const std::vector<std::string_view> keys = [] {
    // in_front_of names one other target: the same for all of them would name one's self.
    std::vector<std::string_view> names{"name", "dsn", "dsn_file", "password_file", "in_front_of"};
    for (const TargetSetting& setting : kTargetSettings) names.push_back(setting.key);
    return names;
  }();
  return keys;
}

void apply_setting(const ErrorReporter& report, const Entry& entry, TargetOptions& options) {
  for (const TargetSetting& setting : kTargetSettings)
    if (setting.key == entry.key) return setting.apply(report, entry, options);
}

// A password_file's content, read where the key is, so that the message has its line.
std::string read_password_file(const ErrorReporter& report, int line, const std::string& path,
                               const std::string& target_label) {
  try {
    return read_secret_file(path, "password_file");
  } catch (const ConfigError& e) {
    report.fail(line, target_label + e.what());
  }
}

// `defaults:`, with its password_file read once for all the targets that inherit it.
struct Defaults {
  TargetOptions options;
  std::string password_file;
  std::string password;
};

Defaults parse_defaults(const ErrorReporter& report, const Entry& section) {
  Defaults defaults;
  if (section.value.IsNull()) return defaults;  // `defaults:` with everything commented out
  if (!section.value.IsMap()) wrong_type(report, section, "a map of target settings");
  for (const Entry& entry : entries_of(report, section.value, defaults_keys(), " in defaults")) {
    if (entry.key == "password_file") {
      defaults.password_file = read_string(report, entry);
      if (!defaults.password_file.empty())
        defaults.password =
            read_password_file(report, entry.line, defaults.password_file, "defaults: ");
    } else {
      apply_setting(report, entry, defaults.options);
    }
  }
  return defaults;
}

struct ParsedTarget {
  TargetOptions options;
  int name_line = 0;
  bool has_dsn = false;
  SecretSources sources;
};

ParsedTarget parse_target(const ErrorReporter& report, const YAML::Node& map, std::size_t index,
                          const Defaults& defaults) {
  const std::string label = "targets[" + std::to_string(index) + "]";
  ParsedTarget target{defaults.options, line_of(map)};
  bool has_dsn = false;
  int dsn_line = 0, dsn_file_line = 0, password_file_line = 0;
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
      dsn_line = entry.line;
    } else if (entry.key == "dsn_file") {
      if (entry.value.IsNull()) continue;
      target.sources.dsn_file = read_string(report, entry);
      dsn_file_line = entry.line;
    } else if (entry.key == "in_front_of") {
      target.options.in_front_of = read_string(report, entry);
    } else if (entry.key == "password_file") {
      // "" on a target: no password_file, not even the defaults' one.
      target.sources.password_file = read_string(report, entry);
      password_file_line = entry.line;
    } else {
      apply_setting(report, entry, target.options);
    }
  }
  const std::string& name = target.options.name;
  if (name.empty()) report.fail(target.name_line, label + " needs a name");
  // Not validated yet: shown escaped.
  const std::string who = "target '" + escape_control_characters(name) + "': ";
  if (has_dsn && dsn_file_line != 0)
    report.fail(std::max(dsn_line, dsn_file_line),
                who + "dsn and dsn_file are mutually exclusive; give one of them");
  if (dsn_file_line != 0 && !target.sources.dsn_file.empty()) {
    try {
      target.options.conninfo = read_secret_file(target.sources.dsn_file, "dsn_file");
    } catch (const ConfigError& e) {
      report.fail(dsn_file_line, who + e.what());
    }
    // libpq's complaint quotes the text it could not parse, and all of this file is secret.
    if (!parses_as_conninfo(target.options.conninfo))
      report.fail(dsn_file_line, who + "the content of dsn_file '" +
                                     escape_control_characters(target.sources.dsn_file) +
                                     "' is not a valid libpq conninfo (not shown: it is secret)");
    has_dsn = true;
  }
  target.has_dsn = has_dsn;
  // The target's own password_file, else the defaults' one where the DSN sets no password.
  std::string password;
  if (password_file_line != 0) {
    if (!target.sources.password_file.empty())
      password = read_password_file(report, password_file_line, target.sources.password_file, who);
  } else if (!defaults.password_file.empty() && !sets_password(target.options.conninfo)) {
    target.sources.password_file = defaults.password_file;
    password = defaults.password;
    password_file_line = target.name_line;
  }
  // A DSN libpq cannot parse is left to pgwd::validate, which reports it the usual way.
  if (!password.empty() && has_dsn && parses_as_conninfo(target.options.conninfo)) {
    try {
      target.options.conninfo = conninfo_with_password(target.options.conninfo, password);
    } catch (const ConfigError& e) {
      report.fail(password_file_line, who + e.what());
    }
  }
  return target;
}

// What the targets add up to once defaults are copied into each: checked target by target, so
// that a file which would expand past the limits is refused before it takes the memory.
class Totals {
 public:
  void add(const ErrorReporter& report, int line, const TargetOptions& target) {
    connections_ += target.connections;
    if (connections_ > kMaxTotalConnections)
      report.fail(line, "target '" + target.name + "': more than " +
                            std::to_string(kMaxTotalConnections) +
                            " connections in all targets together");
    bytes_ += target.name.size() + target.conninfo.size() + target.probe_query.size();
    for (const std::string& channel : target.listen_channels) bytes_ += channel.size();
    if (bytes_ > kMaxExpandedBytes)
      report.fail(line, "target '" + target.name + "': the targets take more than " +
                            std::to_string(kMaxExpandedBytes / (1024 * 1024)) +
                            " MiB once defaults are applied to each");
  }

 private:
  long connections_ = 0;
  std::size_t bytes_ = 0;
};

std::vector<TargetOptions> parse_targets(const ErrorReporter& report, const Entry& section,
                                         const Defaults& defaults,
                                         std::map<std::string, SecretSources, std::less<>>& sources) {
  std::vector<TargetOptions> targets;
  if (section.value.IsNull()) return targets;
  if (!section.value.IsSequence()) wrong_type(report, section, "a list of targets");
  std::map<std::string, int, std::less<>> first_line_of_name;
  Totals totals;
  for (const YAML::Node& item : section.value) {
    const std::string label = "targets[" + std::to_string(targets.size()) + "]";
    if (!item.IsMap())
      report.fail(item.IsNull() ? section.line : line_of(item),
                  label + ": expected a map with name and dsn, got " + describe(item));
    if (targets.size() == kMaxTargets)
      report.fail(line_of(item), "more than " + std::to_string(kMaxTargets) + " targets");
    ParsedTarget target = parse_target(report, item, targets.size(), defaults);
    // First, so that the name is known to be printable UTF-8 before any message quotes it.
    try {
      pgwd::validate(target.options);
    } catch (const InvalidTarget& e) {
      // Already "target 'x': ...", with any password in a conninfo error redacted.
      report.fail(target.name_line, escape_control_characters(e.what()));
    }
    const std::string& name = target.options.name;
    if (!target.has_dsn) report.fail(target.name_line, "target '" + name + "' needs a dsn");
    // A URI's %XX can decode to any byte; --check-config must be able to print the result.
    if (find_invalid_utf8(pgwd::redact_conninfo(target.options.conninfo)))
      report.fail(target.name_line,
                  "target '" + name + "': a DSN value is not valid UTF-8 once %-decoded");
    if (const auto first = first_line_of_name.find(name); first != first_line_of_name.end())
      report.fail(target.name_line, "target '" + name + "' is defined twice (first at line " +
                                        std::to_string(first->second) + ")");
    first_line_of_name.emplace(name, target.name_line);
    totals.add(report, target.name_line, target.options);
    if (!(target.sources == SecretSources{})) sources.emplace(name, target.sources);
    targets.push_back(std::move(target.options));
  }
  return targets;
}

int line_at(std::string_view text, std::size_t offset) {
  return static_cast<int>(
             std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n')) +
         1;
}

// YAML 1.2's c-printable: what a YAML stream may contain at all.
bool is_yaml_printable(char32_t c) {
  return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
         (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
         (c >= 0x10000 && c <= 0x10ffff);
}

std::string code_point_name(char32_t c) {
  char name[16];
  std::snprintf(name, sizeof name, "U+%04X", static_cast<unsigned>(c));
  return name;
}

// Checked before yaml-cpp sees the text: it would otherwise accept some of it silently, and echo
// raw bytes of the rest back in its messages.
void check_yaml_text(const ErrorReporter& report, std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const Utf8CodePoint next = decode_utf8(text, at);
    if (next.length == 0)
      report.fail(line_at(text, at), "not valid UTF-8 at byte offset " + std::to_string(at) +
                                         " (a config file must be UTF-8)");
    if (!is_yaml_printable(next.code_point))
      report.fail(line_at(text, at), "character " + code_point_name(next.code_point) +
                                         " at byte offset " + std::to_string(at) +
                                         " is not allowed in YAML (write it as an escape in a "
                                         "double-quoted string)");
    at += next.length;
  }
}

// Walks the parser's events without building anything, to bound what the document stands for
// before yaml-cpp builds it: each node costs 1 plus its scalar's bytes, and an alias costs what
// its anchor's node cost (so a chain of aliases of aliases is counted at its full expansion).
// yaml-cpp shares an aliased node rather than copying it, but whatever walks the tree later (this
// loader, --check-config's output) pays the full expansion.
class ExpansionMeter final : public YAML::EventHandler {
 public:
  explicit ExpansionMeter(std::size_t budget) : budget_(budget) {}

  /// Thrown from inside the parser when the budget is exceeded; the mark says where.
  struct TooLarge {
    YAML::Mark mark;
  };

  void start_document() {
    total_ = 0;
    anchors_.clear();
    open_.clear();
    document_start_ = -1;
    has_content_ = false;
  }
  int document_start() const { return document_start_; }
  int document_line() const { return document_line_; }
  bool has_content() const { return has_content_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    document_start_ = mark.pos;
    document_line_ = mark.line;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(mark, 1);  // an empty document is a lone null: not content
    remember(anchor, 1);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    node(mark, 0, anchor < anchors_.size() ? anchors_[anchor] : 1);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    node(mark, anchor, 1 + value.size());
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    start_collection(mark, anchor);
  }
  void OnSequenceEnd() override { end_collection(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    start_collection(mark, anchor);
  }
  void OnMapEnd() override { end_collection(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    std::size_t total_at_start;
  };

  void add(const YAML::Mark& mark, std::size_t cost) {
    // Saturating: costs of nested aliases grow exponentially.
    total_ = cost > budget_ - std::min(total_, budget_) ? budget_ + 1 : total_ + cost;
    if (total_ > budget_) throw TooLarge{mark};
  }
  void remember(YAML::anchor_t anchor, std::size_t cost) {
    if (anchor == 0) return;  // 0: no anchor
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, 1);
    anchors_[anchor] = cost;
  }
  void node(const YAML::Mark& mark, YAML::anchor_t anchor, std::size_t cost) {
    has_content_ = true;
    add(mark, cost);
    remember(anchor, cost);
  }
  void start_collection(const YAML::Mark& mark, YAML::anchor_t anchor) {
    has_content_ = true;
    open_.push_back({anchor, total_});
    add(mark, 1);
  }
  void end_collection() {
    if (open_.empty()) return;
    const Open done = open_.back();
    open_.pop_back();
    remember(done.anchor, total_ - done.total_at_start);
  }

  std::size_t budget_;
  std::size_t total_ = 0;
  std::vector<std::size_t> anchors_;
  std::vector<Open> open_;
  int document_start_ = -1;
  int document_line_ = 0;
  bool has_content_ = false;
};

// yaml-cpp 0.7's LoadAll never ends on some input (a lone ',': yaml-cpp #1040, fixed upstream
// after 0.7): the parser reports an empty document without consuming anything, again and again.
// So documents are walked one at a time here, and one that starts where the previous one started
// is a syntax error. Only the first document may hold anything: a later one must be empty (a
// trailing '---').
constexpr int kMaxDocuments = 16;

void check_documents(const ErrorReporter& report, std::string_view yaml_text) {
  std::istringstream input{std::string(yaml_text)};
  YAML::Parser parser(input);
  ExpansionMeter meter(kMaxConfigBytes);
  int previous_start = -1;
  for (int document = 0;; ++document) {
    meter.start_document();
    try {
      if (!parser.HandleNextDocument(meter)) return;
    } catch (const ExpansionMeter::TooLarge& e) {
      report.fail(std::max(e.mark.line, 0) + 1,
                  "the document is larger than " + std::to_string(kMaxConfigBytes / (1024 * 1024)) +
                      " MiB once its YAML aliases are expanded");
    }
    const int line = std::max(meter.document_line(), 0) + 1;
    if (meter.document_start() <= previous_start) {
      const auto at = static_cast<std::size_t>(std::max(meter.document_start(), 0));
      const std::string token =
          at < yaml_text.size() ? quoted_value(yaml_text.substr(at, 1)) : "the end";
      report.fail(line, "YAML syntax error: unexpected " + token);
    }
    previous_start = meter.document_start();
    if (document > 0 && meter.has_content())
      report.fail(line, "only one YAML document is allowed (found a second one)");
    if (document == kMaxDocuments)
      report.fail(line, "more than " + std::to_string(kMaxDocuments) + " YAML documents");
  }
}

YAML::Node load_document(const ErrorReporter& report, std::string_view yaml_text) {
  if (yaml_text.size() > kMaxConfigBytes)
    report.fail(1, "larger than " + std::to_string(kMaxConfigBytes / (1024 * 1024)) + " MiB (" +
                       std::to_string(yaml_text.size()) + " bytes)");
  check_yaml_text(report, yaml_text);
  try {
    check_documents(report, yaml_text);
    return YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    // e.what() would repeat the position in yaml-cpp's own words; the message has it already.
    report.fail(std::max(e.mark.line, 0) + 1,
                "YAML syntax error: " + escape_control_characters(e.msg));
  }
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
  in_addr address{};
  // All digits and dots: an IPv4 address or a typo (10.0.0.256), never a name.
  if (!host.empty() && host.find_first_not_of("0123456789.") == host.npos)
    return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1;
  return is_host_name(host);
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
  if (address.starts_with('['))
    throw ConfigError("listen: " + quoted_value(address) +
                      ": IPv6 addresses are not supported (the HTTP port binds IPv4 only); "
                      "use an IPv4 address such as 127.0.0.1 or 0.0.0.0");
  const std::size_t colon = address.rfind(':');
  if (colon == address.npos || !is_listen_host(address.substr(0, colon)) ||
      !is_port(address.substr(colon + 1)))
    throw ConfigError("listen: bad address " + quoted_value(address) +
                      " (expected HOST:PORT, e.g. 127.0.0.1:10432)");
}

namespace {

DaemonConfig parse_document(const ErrorReporter& report, std::string_view yaml_text) {
  const YAML::Node root = load_document(report, yaml_text);
  DaemonConfig config;
  if (root.IsNull()) return config;  // an empty file, or one with comments only
  if (!root.IsMap())
    report.fail(line_of(root), "expected a map with the keys " + join(top_level_keys()) + ", got " +
                                   describe(root));

  // `defaults:` may come after `targets:` in the file, yet every target inherits it.
  std::optional<Entry> targets_section;
  Defaults defaults;
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
    } else if (entry.key == "per_target_histograms") {
      config.per_target_histograms = read_bool(report, entry);
    } else if (entry.key == "connector_threads") {
      config.connector_threads =
          static_cast<std::size_t>(read_count(report, entry, 0, static_cast<int>(kMaxConnectorThreads)));
    } else if (entry.key == "defaults") {
      defaults = parse_defaults(report, entry);
    } else {
      targets_section = std::move(entry);
    }
  }
  config.defaults = defaults.options;
  config.default_sources.password_file = defaults.password_file;
  if (targets_section)
    config.targets = parse_targets(report, *targets_section, defaults, config.sources);
  config.targets_in_all_shards = config.targets.size();
  return config;
}

}  // namespace

std::size_t default_connector_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp<std::size_t>(cores, 1, kMaxDefaultConnectorThreads);
}

DaemonConfig parse_config(std::string_view yaml_text, std::string_view origin,
                          const EnvironmentLookup& environment) {
  const ErrorReporter report(origin, environment);
  // Whatever goes wrong in here is a configuration problem, never the end of a running daemon.
  try {
    return parse_document(report, yaml_text);
  } catch (const ConfigError&) {
    throw;
  } catch (const YAML::Exception& e) {
    report.fail(std::max(e.mark.line, 0) + 1, "YAML error: " + escape_control_characters(e.msg));
  } catch (const std::bad_alloc&) {
    report.fail(1, "out of memory while loading the configuration");
  } catch (const std::exception& e) {
    report.fail(1, "cannot load the configuration: " + escape_control_characters(e.what()));
  }
}

DaemonConfig load_config_file(const std::string& path) {
  return parse_config(read_regular_file(path, {"config file", kMaxConfigBytes, "4 MiB"}), path);
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const Utf8CodePoint next = decode_utf8(text, at);
    if (next.length == 0) return at;
    at += next.length;
  }
  return std::nullopt;
}

std::string yaml_quoted(std::string_view text) {
  std::string quoted = "\"";
  for (std::size_t at = 0; at < text.size();) {
    const Utf8CodePoint next = decode_utf8(text, at);
    const char32_t c = next.code_point;
    char escape[16];
    if (next.length == 0) {
      std::snprintf(escape, sizeof escape, "\\x%02X", static_cast<unsigned char>(text[at]));
      quoted += escape;
      ++at;
      continue;
    }
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if ((c >= 0x20 && c <= 0x7e) ||
               (c >= 0xa0 && is_yaml_printable(c) && c != 0x2028 && c != 0x2029 && c != 0xfeff)) {
      quoted.append(text.substr(at, next.length));  // line and paragraph separators, BOM: escaped
    } else {
      std::snprintf(escape, sizeof escape,
                    c <= 0xff ? "\\x%02X" : (c <= 0xffff ? "\\u%04X" : "\\U%08X"),
                    static_cast<unsigned>(c));
      quoted += escape;
    }
    at += next.length;
  }
  return quoted + '"';
}

}  // namespace pgwd::daemon
