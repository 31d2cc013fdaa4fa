#include "daemon/yaml_values.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "daemon/duration.hpp"
#include "daemon/file_reading.hpp"

namespace pgwd::daemon {

std::string quoted_value(std::string_view value) {
  constexpr std::size_t kMaxShown = 60;
  std::string shown = escape_control_characters(value.substr(0, kMaxShown));
  if (value.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

int line_of(const YAML::Node& node) {
  return std::max(node.Mark().line, 0) + 1;
}

std::string describe_node(const YAML::Node& node) {
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

std::string join_names(const std::vector<std::string_view>& names) {
  std::string joined;
  for (std::string_view name : names) {
    if (!joined.empty()) joined += ", ";
    joined += name;
  }
  return joined;
}

ValueReader::ValueReader(std::string_view origin, const EnvironmentLookup& environment)
    : origin_(escape_control_characters(origin)), environment_(environment) {}

void ValueReader::fail(int line, std::string_view problem) const {
  throw ConfigError(origin_ + ":" + std::to_string(line) + ": " + std::string(problem));
}

std::string ValueReader::expand(int line, std::string_view label, std::string_view value) const {
  try {
    return expand_env_references(value, environment_);
  } catch (const std::invalid_argument& e) {
    fail(line, std::string(label) + ": " + e.what());
  }
}

std::vector<Entry> ValueReader::entries(const YAML::Node& map,
                                        const std::vector<std::string_view>& known_keys,
                                        const std::string& where) const {
  std::vector<Entry> entries;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // A copy: `it->first` lives in a proxy that dies at the end of the statement.
    const YAML::Node key = it->first;
    const int line = line_of(key);
    if (!key.IsScalar())
      fail(line, "a key must be a plain name" + where + ", got " + describe_node(key));
    if (std::find(known_keys.begin(), known_keys.end(), key.Scalar()) == known_keys.end())
      fail(line, "unknown key " + quoted_value(key.Scalar()) + where +
                     " (known keys: " + join_names(known_keys) + ")");
    // yaml-cpp keeps both copies of a repeated key; silently taking one would hide a mistake.
    for (const Entry& earlier : entries)
      if (earlier.key == key.Scalar())
        fail(line, "key '" + earlier.key + "' appears twice" + where + " (first at line " +
                       std::to_string(earlier.line) + ")");
    entries.push_back({key.Scalar(), line, it->second});
  }
  return entries;
}

void ValueReader::wrong_type(const Entry& entry, std::string_view expected) const {
  fail(entry.line,
       entry.key + ": expected " + std::string(expected) + ", got " + describe_node(entry.value));
}

void ValueReader::out_of_range(const Entry& entry, const std::string& low,
                               const std::string& high) const {
  fail(entry.line, entry.key + ": " + describe_node(entry.value) + " is out of range (" + low +
                       " to " + high + ")");
}

std::string ValueReader::string(const Entry& entry, const ValueRange& range) const {
  if (!entry.value.IsScalar()) wrong_type(entry, "a string");
  // A NUL can only come from an escape ("\0"), and libpq and the server would cut the string
  // there.
  if (entry.value.Scalar().find('\0') != std::string::npos)
    fail(entry.line, entry.key + ": contains a NUL character");
  std::string text = expand(entry.line, entry.key, entry.value.Scalar());
  if (range.max_size != 0 && text.size() > range.max_size)
    fail(entry.line, entry.key + ": longer than " + std::to_string(range.max_size) + " bytes (" +
                         std::to_string(text.size()) + ")");
  return text;
}

long long ValueReader::integer(const Entry& entry, const ValueRange& range) const {
  if (!entry.value.IsScalar()) wrong_type(entry, "an integer");
  const std::string text = expand(entry.line, entry.key, entry.value.Scalar());
  const bool negative = text.size() > 1 && text.front() == '-';
  const std::string_view digits = std::string_view(text).substr(negative ? 1 : 0);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
    wrong_type(entry, "an integer");
  long long number = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (negative || error != std::errc() || end != digits.data() + digits.size() ||
      number < range.min || number > range.max)
    out_of_range(entry, std::to_string(range.min), std::to_string(range.max));
  return number;
}

// Every duration has a range that keeps it far from overflowing wherever it is used (as
// nanoseconds on a steady clock, multiplied by a host count, or handed to libpq as an int).
Duration ValueReader::duration(const Entry& entry, const ValueRange& range) const {
  if (!entry.value.IsScalar()) wrong_type(entry, "a duration such as 10s");
  const Duration min(range.min), max(range.max);
  Duration duration{};
  try {
    duration = parse_duration(expand(entry.line, entry.key, entry.value.Scalar()));
  } catch (const std::out_of_range&) {
    out_of_range(entry, format_duration(min), format_duration(max));
  } catch (const std::invalid_argument& e) {
    fail(entry.line, entry.key + ": " + e.what());
  }
  if (duration < min || duration > max)
    out_of_range(entry, format_duration(min), format_duration(max));
  return duration;
}

bool ValueReader::boolean(const Entry& entry) const {
  const std::string value = string(entry, {});
  if (value != "true" && value != "false")
    fail(entry.line, entry.key + ": expected true or false, got " + quoted_value(value));
  return value == "true";
}

std::string ValueReader::choice(const Entry& entry, const ValueRange& range) const {
  std::string name = string(entry, {});
  if (std::find(range.choices.begin(), range.choices.end(), name) == range.choices.end())
    fail(entry.line, entry.key + ": unknown " + std::string(range.choice_noun) + " " +
                         quoted_value(name) + " (" +
                         join_names({range.choices.begin(), range.choices.end()}) + ")");
  return name;
}

std::vector<std::string> ValueReader::string_list(const Entry& entry,
                                                  const ValueRange& range) const {
  if (entry.value.IsNull()) return {};
  if (!entry.value.IsSequence()) wrong_type(entry, "a list of strings");
  if (range.max_size != 0 && entry.value.size() > range.max_size)
    fail(entry.line, entry.key + ": more than " + std::to_string(range.max_size) + " entries (" +
                         std::to_string(entry.value.size()) + ")");
  std::vector<std::string> strings;
  for (const YAML::Node& item : entry.value) {
    const std::string label = entry.key + "[" + std::to_string(strings.size()) + "]";
    if (!item.IsScalar())
      fail(item.IsNull() ? entry.line : line_of(item),
           label + ": expected a string, got " + describe_node(item));
    if (item.Scalar().find('\0') != std::string::npos)
      fail(line_of(item), label + ": contains a NUL character");
    strings.push_back(expand(line_of(item), label, item.Scalar()));
  }
  return strings;
}

}  // namespace pgwd::daemon
