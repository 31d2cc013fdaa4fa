#include "daemon/env_references.hpp"

#include <cstdlib>
#include <stdexcept>

namespace pgwd::daemon {
namespace {

bool starts_name(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool continues_name(char c) { return starts_name(c) || (c >= '0' && c <= '9'); }

}  // namespace

std::optional<std::string> process_environment(const std::string& name) {
  // The daemon reads its environment only on its own loop thread and never sets it.
  if (const char* value = std::getenv(name.c_str())) return std::string(value);  // NOLINT(concurrency-mt-unsafe)
  return std::nullopt;
}

std::string expand_env_references(std::string_view text, const EnvironmentLookup& lookup) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    if (text.substr(at, 3) == "$${") {
      out += "${";
      at += 3;
      continue;
    }
    if (text.substr(at, 2) != "${") {
      out += text[at++];
      continue;
    }
    const std::size_t name_start = at + 2;
    std::size_t name_end = name_start;
    if (name_end < text.size() && starts_name(text[name_end]))
      while (name_end < text.size() && continues_name(text[name_end])) ++name_end;
    if (name_end == name_start || name_end >= text.size() || text[name_end] != '}')
      throw std::invalid_argument(
          "bad environment variable reference at character " + std::to_string(at + 1) +
          " (write ${NAME} with NAME made of letters, digits and _, or $${ for a literal ${)");
    const std::string name(text.substr(name_start, name_end - name_start));
    const std::optional<std::string> value = lookup(name);
    if (!value) throw std::invalid_argument("environment variable '" + name + "' is not set");
    out += *value;
    at = name_end + 1;
  }
  return out;
}

std::string escape_env_references(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text.substr(at, 2) == "${") out += '$';
    out += text[at];
  }
  return out;
}

}  // namespace pgwd::daemon
