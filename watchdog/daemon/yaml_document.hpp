#pragma once

/// \file
/// The config file's text as YAML: checked before yaml-cpp sees it (UTF-8, what YAML allows, one
/// document, aliases counted at their expansion), so that no input makes the loader hang or grow
/// (docs/configuration.md "Limits"); and strings written back as YAML.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/yaml_values.hpp"

namespace pgwd::daemon {

/// The one document of `yaml_text`: at most `max_bytes` long, and as long once its aliases are
/// expanded. Anything else is a ConfigError at its line through `report`; an empty text (or only
/// comments) is a null node.
YAML::Node load_document(const ValueReader& report, std::string_view yaml_text,
                         std::size_t max_bytes);

/// Offset of the first byte that does not start a valid UTF-8 sequence (overlong forms,
/// surrogates and code points above U+10FFFF are invalid), or nullopt.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

/// `text` as a YAML double-quoted scalar that parse_config reads back as exactly `text`, with
/// every character outside YAML's printable set escaped. `text` must be valid UTF-8 (every string
/// parse_config returns is); an invalid byte is written as \xNN, which reads back as U+00NN.
std::string yaml_quoted(std::string_view text);

}  // namespace pgwd::daemon
