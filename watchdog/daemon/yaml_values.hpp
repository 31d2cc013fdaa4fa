#pragma once

/// \file
/// Reading one value of the config file: what it must be, and the message, at its file and line,
/// when it is not. Every value passes through a ValueReader, so it also expands `${NAME}`
/// references (env_references.hpp). What a key's value must be is declared in config_keys.hpp.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config_error.hpp"
#include "daemon/env_references.hpp"
#include "pgwd/target_options.hpp"

namespace pgwd::daemon {

/// What a value may be; a key's declaration (config_keys.hpp) sets the parts that fit its type.
/// The loader checks these, and the docs' key tables print them.
struct ValueRange {
  long long min = 0;  ///< integer: the number; duration: milliseconds
  long long max = 0;
  std::string_view zero_means;  ///< an integer or duration whose 0 means something: "off"
  std::size_t max_size = 0;     ///< string: bytes; list: items; 0: not bounded here
  std::span<const std::string_view> choices;  ///< a choice: the names allowed
  std::string_view choice_noun;               ///< a choice: "level" in "unknown level 'x'"
  std::string_view also;  ///< what is checked beyond this (by the library), in the docs' words
};

/// One `key: value` of a map, with the key already checked against the section's known keys.
struct Entry {
  std::string key;
  int line = 0;
  YAML::Node value;
};

/// A value echoed back to the user: escaped, and short enough that the message still fits on a
/// screen line.
std::string quoted_value(std::string_view value);

/// The 1-based line of a node. yaml-cpp counts from 0, and a null value's mark points at the
/// token after it (often the next line), which is why value errors are reported at their key's
/// line.
int line_of(const YAML::Node& node);

/// "'text'" (shortened), "a list", "a map" or "nothing": what a message says was found.
std::string describe_node(const YAML::Node& node);

/// "a, b, c".
std::string join_names(const std::vector<std::string_view>& names);

class ValueReader {
 public:
  /// `origin` (usually the file path) starts every message: "<origin>:<line>: ...".
  ValueReader(std::string_view origin, const EnvironmentLookup& environment);

  [[noreturn]] void fail(int line, std::string_view problem) const;

  /// A value with its ${NAME} references expanded; `label` (the key) starts the message.
  std::string expand(int line, std::string_view label, std::string_view value) const;

  /// The entries of a map, each key a plain name out of `known_keys` and given once. `where`
  /// completes "unknown key 'x'": empty at the top level, " in defaults", " in targets[2]".
  std::vector<Entry> entries(const YAML::Node& map, const std::vector<std::string_view>& known_keys,
                             const std::string& where) const;

  [[noreturn]] void wrong_type(const Entry& entry, std::string_view expected) const;

  /// A string without NUL (libpq and the server would cut it there), at most range.max_size
  /// bytes when that is set. Only a value that is not a scalar is described in a message, and
  /// then as "a map" or "a list", so a DSN's password never reaches one.
  std::string string(const Entry& entry, const ValueRange& range) const;
  /// Plain decimal digits within [range.min, range.max]: YAML's 0x/0o forms, signs and
  /// fractions are refused, and a number outside the range is reported with it.
  long long integer(const Entry& entry, const ValueRange& range) const;
  /// A duration (duration.hpp) within [range.min, range.max] milliseconds.
  Duration duration(const Entry& entry, const ValueRange& range) const;
  /// `true` or `false`, nothing else.
  bool boolean(const Entry& entry) const;
  /// One of range.choices; anything else is "<key>: unknown <range.choice_noun> 'x' (a, b)".
  std::string choice(const Entry& entry, const ValueRange& range) const;
  /// A list (or nothing) of at most range.max_size strings.
  std::vector<std::string> string_list(const Entry& entry, const ValueRange& range) const;

 private:
  [[noreturn]] void out_of_range(const Entry& entry, const std::string& low,
                                 const std::string& high) const;

  std::string origin_;
  const EnvironmentLookup& environment_;
};

}  // namespace pgwd::daemon
