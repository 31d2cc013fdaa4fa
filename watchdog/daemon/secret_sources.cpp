#include "daemon/secret_sources.hpp"

#include "daemon/config.hpp"
#include "daemon/file_reading.hpp"
#include "pg/conninfo.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd::daemon {

std::string read_secret_file(const std::string& path, std::string_view key) {
  std::string content = read_regular_file(path, {key, kMaxSecretFileBytes, "64 KiB"});
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) content.pop_back();
  const std::string shown = std::string(key) + " '" + escape_control_characters(path) + "'";
  if (content.empty()) throw ConfigError(shown + " is empty");
  if (content.find('\0') != std::string::npos)
    throw ConfigError(shown + " contains a NUL byte");
  return content;
}

bool sets_password(std::string_view conninfo) {
  try {
    return Conninfo::parse(conninfo).get("password").has_value();
  } catch (const InvalidTarget&) {
    return false;
  }
}

bool parses_as_conninfo(std::string_view conninfo) {
  try {
    Conninfo::parse(conninfo);
    return true;
  } catch (const InvalidTarget&) {
    return false;
  }
}

std::string conninfo_with_password(std::string_view conninfo, const std::string& password) {
  Conninfo parsed = [&] {
    try {
      return Conninfo::parse(conninfo);
    } catch (const InvalidTarget& e) {
      throw ConfigError(std::string("bad dsn: ") + e.what());  // libpq's words, redacted
    }
  }();
  if (parsed.get("password"))
    throw ConfigError("the dsn sets a password and password_file gives one too; remove one");
  parsed.set("password", password);
  return parsed.text();
}

}  // namespace pgwd::daemon
