#include "daemon/secret_sources.hpp"

#include "daemon/config.hpp"
#include "daemon/file_reading.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {

std::string read_secret_file(const std::string& path, std::string_view key) {
  std::string content = read_regular_file(path, {key, kMaxSecretFileBytes, "64 KiB"});
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) content.pop_back();
  const std::string shown = std::string(key) + " '" + escape_control_characters(path) + "'";
  if (content.empty()) throw ConfigError(shown + " is empty");
  if (content.find('\0') != std::string::npos) throw ConfigError(shown + " contains a NUL byte");
  return content;
}

std::optional<Conninfo> parse_dsn(std::string_view dsn) {
  try {
    return Conninfo::parse(dsn);
  } catch (const InvalidTarget&) {
    return std::nullopt;
  }
}

void add_password(Conninfo& dsn, const std::string& password) {
  if (dsn.get("password"))
    throw ConfigError("the dsn sets a password and password_file gives one too; remove one");
  dsn.set("password", password);
}

}  // namespace pgwd::daemon
